"""Video colorization (agincolor.video, Colorizer.colorize_video, `agincolor colorize` on videos).

Clips are made here, a few frames at 64x48, written and read back through PyAV itself; the model is a tiny
random Colorizer, whose colours are strong enough to see."""

from __future__ import annotations

import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from agincolor import cli, video  # noqa: E402
from agincolor.colorizer import Colorizer  # noqa: E402
from agincolor.image_processor import srgb_to_lab  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
W, H = 64, 48
TB = Fraction(1, 90000)
# Variable frame rate: gaps of 1, 1, 2, 1, 3 frames at 25 fps.
PTS = [0, 3600, 7200, 14400, 18000, 28800]


@pytest.fixture(scope="module")
def model() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(generator=dict(base_channels=8, num_groups=8, num_blocks=1), working_size=32).eval()


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    model.save_pretrained(folder)
    return folder


def scene(seed: int, n: int = len(PTS), shift: int = 1, colour: bool = False) -> list[np.ndarray]:
    """n frames panning over a smooth random texture, gray stored as RGB (or with colour)."""
    rng = np.random.default_rng(seed)
    import cv2

    big = cv2.GaussianBlur(rng.uniform(0, 255, (H + 8, W + 8 * n, 3)).astype(np.float32), (0, 0), 3)
    big = (big - big.min()) / (big.max() - big.min()) * 235 + 10
    frames = []
    for t in range(n):
        crop = big[4 : 4 + H, shift * t : shift * t + W]
        rgb = crop if colour else np.repeat(crop.mean(axis=2, keepdims=True), 3, axis=2)
        frames.append(np.round(rgb).astype(np.uint8))
    return frames


def write_clip(
    path: Path, frames, *, codec: str = "libx264", pts=PTS, audio: str | None = None, rotation: int | None = None
) -> None:
    out = av.open(str(path), "w")
    stream = out.add_stream(codec, rate=25, options={"slicecrc": "1"} if codec == "ffv1" else {})
    stream.width, stream.height = W, H
    stream.pix_fmt = "yuv420p" if codec == "libx264" else "bgr0"
    stream.codec_context.time_base = TB
    if rotation is not None:
        stream.set_display_rotation(rotation)
    sound = None
    if audio is not None:
        sound = out.add_stream(audio, rate=8000)
        sound.layout = "mono"
    for rgb, p in zip(frames, pts):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=stream.pix_fmt)
        frame.pts, frame.time_base = p, TB
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    if sound is not None:
        n = int(8000 * (pts[-1] + 3600) * TB)
        wave = np.sin(np.arange(n) / 5.0)[None]
        if audio == "aac":
            data, fmt = wave.astype(np.float32) * 0.3, "fltp"
        elif audio == "pcm_u8":
            data, fmt = (wave * 60 + 128).astype(np.uint8), "u8"
        else:
            data, fmt = (wave * 9000).astype(np.int16), "s16"
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        for packet in sound.encode(frame):
            out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    out.close()


def read(path: Path) -> dict:
    container = av.open(str(path))
    try:
        v = container.streams.video[0]
        cc = v.codec_context
        info = dict(
            codec=cc.name, size=(cc.width, cc.height), primaries=cc.color_primaries, trc=cc.color_trc,
            audio=[a.codec_context.name for a in container.streams.audio], frames=[], times=[], rotation=None,
        )  # fmt: skip
        for frame in container.decode(v):
            info["frames"].append(frame.to_ndarray(format="rgb24"))
            info["times"].append(float(frame.time))
            info["rotation"] = frame.rotation
    finally:
        container.close()
    return info


def chroma_of(rgb: np.ndarray) -> float:
    return float(np.hypot(*np.moveaxis(srgb_to_lab(rgb / 255.0)[..., 1:], -1, 0)).mean())


def run(*argv: object) -> int:
    return cli.main([str(a) for a in argv])


# ------------------------------------------------------------------------------------------ files
def test_cli_single_video_to_file_keeps_size_timestamps_rotation_audio_and_tags_colour(tmp_path, model_dir, capsys):
    src, dst = tmp_path / "old_film.mp4", tmp_path / "film_colour.mp4"
    write_clip(src, scene(0), audio="aac", rotation=90)
    assert run("colorize", src, "-o", dst, "--model", model_dir, "--no-progress") == 0
    assert "wrote 0 images and 1 videos" in capsys.readouterr().out
    before, after = read(src), read(dst)
    assert after["size"] == (W, H)
    assert after["times"] == pytest.approx(before["times"], abs=1e-6)  # variable frame rate kept
    assert len(after["frames"]) == len(PTS)
    assert after["rotation"] == 90
    assert after["audio"] == ["aac"]
    assert (after["primaries"], after["trc"]) == (1, 13)  # BT.709 primaries, sRGB transfer
    assert min(chroma_of(f) for f in after["frames"]) > 3  # coloured, not gray
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film_colour.mp4", "old_film.mp4"]


def test_audio_the_container_cannot_hold_is_reencoded_and_said_so_and_none_is_none(tmp_path, model):
    src = tmp_path / "in.mkv"
    write_clip(src, scene(1), audio="pcm_u8")
    result = model.colorize_video(src, tmp_path / "out.mp4")
    assert result.audio == ["re-encoded to aac (mp4 cannot hold pcm_u8)"]
    assert read(tmp_path / "out.mp4")["audio"] == ["aac"]
    copied = model.colorize_video(src, tmp_path / "out.mkv")
    assert copied.audio == ["copied"] and read(tmp_path / "out.mkv")["audio"] == ["pcm_u8"]
    silent = tmp_path / "silent.mp4"
    write_clip(silent, scene(1))
    result = model.colorize_video(silent, tmp_path / "silent_out.mp4")
    assert result.audio == [] and read(tmp_path / "silent_out.mp4")["audio"] == []
    assert result.frames == len(PTS)


def test_lossless_output_holds_exactly_the_frames_handed_to_the_encoder(tmp_path, model):
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_clip(src, scene(2), codec="ffv1")
    model.colorize_video(src, dst, codec="ffv1", batch_size=2)
    decoded = [rgb for rgb, _ in video.iter_frames(src)]
    frames = model.frame_colorizer(lookahead=video.DEFAULT_LOOKAHEAD)  # as files are colorized
    expected = [f for i in range(0, len(decoded), 2) for f in frames.colorize(decoded[i : i + 2])] + frames.finish()
    got = read(dst)
    assert got["codec"] == "ffv1"
    for a, b in zip(got["frames"], expected, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="ffv1 needs a .mkv or .avi"):
        model.colorize_video(src, tmp_path / "x.mp4", codec="ffv1")


def test_folder_with_videos_and_photos_colorizes_both(tmp_path, model_dir, capsys):
    from PIL import Image

    root = tmp_path / "in"
    (root / "reels").mkdir(parents=True)
    Image.fromarray(scene(3, 1)[0]).save(root / "photo.png")
    write_clip(root / "reels" / "clip.mkv", scene(4), codec="ffv1")
    out = tmp_path / "out"
    assert run("colorize", root, "-o", out, "--model", model_dir, "--no-progress", "--codec", "ffv1") == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["photo.png", "reels/clip.mkv"]
    assert len(read(out / "reels" / "clip.mkv")["frames"]) == len(PTS)


def test_colour_video_is_left_alone_unless_recolor_and_the_api_warns(tmp_path, model, model_dir, capsys):
    src = tmp_path / "colour.mkv"
    write_clip(src, scene(5, colour=True), codec="ffv1")
    out = tmp_path / "out"
    assert run("colorize", src, "-o", out, "--model", model_dir, "--no-progress") == 0
    assert "already have colour" in capsys.readouterr().err
    assert not out.exists() or not any(out.rglob("*"))
    assert run("colorize", src, "-o", out, "--model", model_dir, "--no-progress", "--recolor") == 0
    assert (out / "colour.mkv").is_file()
    with pytest.warns(UserWarning, match="colour.mkv.*already has colour"):
        model.colorize_video(src, tmp_path / "api.mkv")


def test_unopenable_video_fails_naming_it_and_leaves_nothing(tmp_path, model, model_dir, capsys):
    bad = tmp_path / "in" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    out = tmp_path / "out"
    assert run("colorize", bad.parent, "-o", out, "--model", model_dir, "--no-progress") == 1
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "Traceback" not in err
    assert not out.exists() or not any(out.rglob("*"))
    with pytest.raises(video.VideoReadError, match="broken.mp4"):
        model.colorize_video(bad, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_failure_midway_leaves_no_partial_output_and_no_temporary_file(tmp_path, model, monkeypatch):
    src, dst = tmp_path / "in.mp4", tmp_path / "out" / "out.mp4"
    write_clip(src, scene(6))
    calls = []

    def chroma(gray):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return model._chroma(gray)

    with pytest.raises(RuntimeError, match="out of memory"):
        video.colorize_video_file(src, dst, chroma, working_size=32, batch_size=2)
    assert list(dst.parent.iterdir()) == []
    dst.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        model.colorize_video(src, dst)
    assert dst.read_bytes() == b"keep"


def test_undecodable_packet_is_replaced_by_the_previous_frame_and_counted(tmp_path, model):
    src = tmp_path / "in.mkv"
    write_clip(src, scene(7), codec="ffv1")
    container = av.open(str(src))
    packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    container.close()
    data = bytearray(src.read_bytes())
    pos, size = packets[3]
    for k in range(pos + 20, pos + size - 20, 7):
        data[k] ^= 0x5A
    src.write_bytes(bytes(data))
    result = model.colorize_video(src, tmp_path / "out.mkv", codec="ffv1", temporal_strength=0)
    assert (result.frames, result.repeated) == (len(PTS), 1)
    got = read(tmp_path / "out.mkv")
    assert got["times"] == pytest.approx([p * float(TB) for p in PTS], abs=1e-6)
    np.testing.assert_array_equal(got["frames"][3], got["frames"][2])


# ------------------------------------------------------------------------------------------ frames
def test_frames_keep_their_own_lightness_when_stabilised(model):
    frames = scene(8, 8, shift=2)
    out = model.frame_colorizer(temporal_strength=1.0).colorize(frames)
    for rgb, colour in zip(frames, out):
        lightness_in = srgb_to_lab(rgb / 255.0)[..., 0]
        lightness_out = srgb_to_lab(colour / 255.0)[..., 0]
        assert np.abs(lightness_out - lightness_in).max() <= 1.0  # uint8 rounding only
        assert chroma_of(colour) > 3


def test_temporal_strength_zero_equals_colorizing_each_frame_as_a_photo(model):
    frames = scene(9, 4)
    out = model.frame_colorizer(temporal_strength=0).colorize(frames)
    for a, b in zip(out, model.colorize(frames, batch_size=4), strict=True):
        np.testing.assert_array_equal(a, b)
    model.resample = "lanczos"  # frames are shrunk with the model's own filter, as photos are
    try:
        sharp = model.frame_colorizer(temporal_strength=0).colorize(frames)
        for a, b in zip(sharp, model.colorize(frames, batch_size=4), strict=True):
            np.testing.assert_array_equal(a, b)
        assert max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(sharp, out)) > 0
    finally:
        model.resample = "bilinear"


def test_frames_keep_their_own_luma_with_a_model_that_keeps_luma(model):
    frames = scene(6, 4)
    model.brightness = "luma"
    try:
        out = model.frame_colorizer(temporal_strength=1.0, lookahead=2)
        colours = out.colorize(frames) + out.finish()
        assert len(colours) == len(frames)
        for rgb, colour in zip(frames, colours):
            luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
            assert np.abs(colour.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) - luma).max() <= 1.0
            assert chroma_of(colour) > 3
        for a, b in zip(model.frame_colorizer(temporal_strength=0).colorize(frames), model.colorize(frames, batch_size=4)):
            np.testing.assert_array_equal(a, b)  # frame by frame, as photos are
    finally:
        model.brightness = "lightness"


def test_stabiliser_removes_chroma_jitter_along_a_pan_and_leaves_steady_chroma_alone():
    import cv2

    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 1, (60, 200)).astype(np.float32), (0, 0), 2)
    ab_world = np.stack([texture * 60 - 30, 20 - texture * 40])
    stab = video.TemporalStabilizer(0.9)
    raw_diffs, out_diffs, previous = [], [], None
    for t in range(12):
        gray = texture[10:50, 2 * t : 2 * t + 64]
        truth = ab_world[:, 10:50, 2 * t : 2 * t + 64]
        noisy = truth + rng.normal(0, 3, truth.shape).astype(np.float32)
        out = stab.update(gray, noisy)
        if previous is not None:  # compare on the part seen in both frames
            raw_diffs.append(np.abs(noisy[:, :, 4:-8] - previous[0][:, :, 6:-6]).mean())
            out_diffs.append(np.abs(out[:, :, 4:-8] - previous[1][:, :, 6:-6]).mean())
        previous = (noisy, out)
    assert np.mean(out_diffs) < 0.5 * np.mean(raw_diffs)
    steady = video.TemporalStabilizer(0.9)
    ab = np.full((2, 40, 64), 12.0, np.float32)
    for _ in range(3):
        np.testing.assert_allclose(steady.update(texture[10:50, :64], ab), ab, atol=1e-3)


def test_scene_cut_starts_afresh_and_exposure_flicker_is_not_a_cut(model):
    a, b = scene(10, 4), scene(11, 4)
    frames = model.frame_colorizer(temporal_strength=0.9)
    out = frames.colorize(a) + frames.colorize(b)
    alone = model.frame_colorizer(temporal_strength=0).colorize(b)
    assert frames.cuts == 1
    np.testing.assert_array_equal(out[4], alone[0])  # the first frame after the cut is its own
    detector = video.CutDetector()
    gains = [1.0, 0.7, 1.25, 0.8, 1.15, 0.6]
    flickering = [np.clip(f[..., 0] * g, 0, 255) / 255.0 for f, g in zip(scene(12, 6), gains)]
    assert not any(detector(f) for f in flickering)
    gamma = [(f ** 1.6) for f in flickering]  # a tone-curve change, not only a gain
    assert not any(detector(f) for f in [flickering[0], *gamma[1:]])


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "0.5", float("nan")])
def test_bad_temporal_strength_is_rejected(model, bad, tmp_path):
    with pytest.raises(ValueError, match="temporal_strength must be a number in \\[0, 1\\]"):
        model.frame_colorizer(temporal_strength=bad)
    with pytest.raises(ValueError, match="temporal_strength"):
        video.TemporalStabilizer(bad)


def test_no_temporal_strength_means_the_default(model):
    assert model.frame_colorizer().stabilizer.temporal_strength == video.DEFAULT_TEMPORAL_STRENGTH
    assert model.frame_colorizer(temporal_strength=None).stabilizer.temporal_strength == video.DEFAULT_TEMPORAL_STRENGTH
    assert video.TemporalStabilizer(None).temporal_strength == video.DEFAULT_TEMPORAL_STRENGTH
    assert model.frame_colorizer(temporal_strength=0).stabilizer.temporal_strength == 0.0


def test_bad_temporal_strength_option_is_a_usage_error(tmp_path, model_dir, capsys):
    src = tmp_path / "a.mp4"
    write_clip(src, scene(13, 2), pts=PTS[:2])
    with pytest.raises(SystemExit) as exit_info:
        run("colorize", src, "-o", tmp_path / "b.mp4", "--temporal-strength", "1.5", "--model", model_dir)
    assert exit_info.value.code == 2
    assert "expected a number in [0, 1]" in capsys.readouterr().err
    assert run("colorize", tmp_path, "-o", tmp_path / "c.mp4", "--model", model_dir) == 2
    assert "takes a single video input" in capsys.readouterr().err


def test_missing_video_extra_names_it(monkeypatch, tmp_path, model):
    monkeypatch.setitem(sys.modules, "av", None)
    src = tmp_path / "a.mp4"
    src.write_bytes(b"")
    with pytest.raises(ImportError, match=r"agincolor\[video\]"):
        model.colorize_video(src, tmp_path / "b.mp4")


def test_import_agincolor_loads_neither_pyav_nor_opencv():
    code = "import sys, agincolor, agincolor.cli, agincolor.video; print('av' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)})
    assert out.stdout.split() == ["False", "False"], out.stderr


def _jittery_chroma(offsets: list[float]):
    """A network whose a* jumps from frame to frame (offsets[t] for the t-th frame it sees), b* steady."""
    seen = []

    def chroma(gray):
        n, _, h, w = gray.shape
        ab = np.zeros((n, 2, h, w), np.float32)
        for i in range(n):
            ab[i, 0] = 10.0 + offsets[len(seen)]
            ab[i, 1] = -5.0
            seen.append(1)
        return ab, None

    return chroma


def test_lookahead_gives_frames_late_with_the_later_frames_chroma_and_never_over_a_cut(model):
    offsets = [0.0, 6.0, -6.0, 6.0, -6.0, 6.0, -6.0, 6.0]
    frames = scene(14, 8, shift=0)  # a still picture: the motion is trusted everywhere

    def colorizer(lookahead):
        chroma = _jittery_chroma(offsets)
        return video.FrameColorizer(chroma, working_size=32, temporal_strength=0.9, lookahead=lookahead)

    causal = colorizer(0).colorize(frames)
    ahead = colorizer(2)
    got = [ahead.colorize(frames[:4]), ahead.colorize(frames[4:]), ahead.finish()]
    assert [len(g) for g in got] == [2, 4, 2]
    out = [f for g in got for f in g]

    def a_star(rgb):
        return float(srgb_to_lab(rgb / 255.0)[..., 1].mean())

    # Frame t carries frame t + 2's stabilised chroma (the mean of three more predictions), the last ones
    # the last frame's: steadier than the causal output, which lags two frames behind it.
    for t in range(8):
        assert a_star(out[t]) == pytest.approx(a_star(causal[min(t + 2, 7)]), abs=0.3)
    assert np.ptp([a_star(f) for f in out]) < np.ptp([a_star(f) for f in causal])

    a, b = scene(10, 4), scene(11, 4)
    with_cut = model.frame_colorizer(temporal_strength=0.9, lookahead=2)
    out = with_cut.colorize(a) + with_cut.colorize(b) + with_cut.finish()
    plain = model.frame_colorizer(temporal_strength=0.9)
    before = plain.colorize(a)
    assert len(out) == 8 and with_cut.cuts == 1
    np.testing.assert_array_equal(out[3], before[3])  # nothing comes back over the cut
    with pytest.raises(ValueError, match="lookahead must be an int >= 0"):
        model.frame_colorizer(lookahead=-1)
