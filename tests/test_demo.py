"""The web demo's work without a browser: agincolor.demo.Demo (what each request does) and `agincolor demo`.

Tiny random models stand in for real ones; the page itself, in a real browser, is tests/test_demo_browser.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from agincolor import cli, demo as web, has_colour
from agincolor import image_processor as ip
from agincolor.colorizer import Colorizer
from agincolor.demo import BUNDLED_MODEL, PREVIEW_SIDE, Demo, DemoResult, read_upload


def tiny(seed: int, working_size: int = 32) -> Colorizer:
    torch.manual_seed(seed)
    return Colorizer(generator=dict(base_channels=8, num_groups=8, num_blocks=1), working_size=working_size).eval()


@pytest.fixture(scope="module")
def models() -> dict[str, Colorizer]:
    return {BUNDLED_MODEL: tiny(0), "runs/other": tiny(1)}


@pytest.fixture()
def demo(models: dict[str, Colorizer], tmp_path: Path) -> Demo:
    d = Demo(models, max_upload_mb=0.05, output_dir=tmp_path / "results")
    yield d
    d.close()


def gray_photo(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """Random gray levels, or a horizontal ramp (a small file) when wider than 256 pixels."""
    if size[0] > 256:
        levels = np.tile(np.linspace(0, 255, size[0]).astype(np.uint8), (size[1], 1))
    else:
        levels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0]), dtype=np.uint8)
    Image.fromarray(levels, mode="L").save(path)
    return path


def colour_photo(path: Path) -> Path:
    """Random colours: many hues at every lightness, colour that no single tone explains."""
    Image.fromarray(np.random.default_rng(5).integers(0, 256, size=(40, 48, 3), dtype=np.uint8)).save(path)
    assert has_colour(Image.open(path))
    return path


def assert_refused(result: DemoResult, *words: str) -> None:
    assert (result.gray, result.colour, result.attention, result.download) == (None, None, None, None)
    for word in words:
        assert word in result.message
    assert "Traceback" not in result.message


def test_gray_upload_gives_previews_and_a_full_resolution_png_of_the_input_size(demo, tmp_path):
    photo = gray_photo(tmp_path / "scan_1.png", size=(48, 40))
    result = demo.run(str(photo))
    assert result.download is not None and result.download.name == "scan_1_colour.png"
    with Image.open(result.download) as saved:
        assert saved.format == "PNG" and saved.size == (48, 40) and saved.mode == "RGB"
    assert result.colour.size == result.attention.size == result.gray.size == (48, 40)
    np.testing.assert_array_equal(np.asarray(result.gray), np.asarray(Image.open(photo)))
    assert "Colorized scan\\_1.png" in result.message  # Markdown-escaped, so the name shows as it is


def test_previews_are_bounded_but_the_download_keeps_every_pixel(demo, tmp_path):
    result = demo.run(str(gray_photo(tmp_path / "wide.png", size=(PREVIEW_SIDE + 300, 40))))
    assert max(result.colour.size) == max(result.gray.size) == max(result.attention.size) == PREVIEW_SIDE
    with Image.open(result.download) as saved:
        assert saved.size == (PREVIEW_SIDE + 300, 40)


@pytest.mark.parametrize("content", [b"\xff\xd8\xff\xe0 broken jpeg" * 20, b"just some notes\n"])
def test_corrupt_file_or_non_image_is_a_message_naming_it(demo, tmp_path, content):
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(content)
    assert_refused(demo.run(str(bad)), "holiday.jpg", "is not an image agincolor can read")


def test_file_over_the_upload_cap_is_refused_before_it_is_read(demo, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(np.random.default_rng(0).bytes(60_000))  # a cap of 0.05 MB is 50,000 bytes
    assert_refused(demo.run(str(big)), "big.png is too large", "0.06 MB", "up to 0.05 MB")


def test_decompression_bomb_is_refused_with_a_message(demo, tmp_path, monkeypatch):
    photo = gray_photo(tmp_path / "many.png", size=(48, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 48 * 40 // 4)  # PIL refuses above twice the limit
    assert_refused(demo.run(str(photo)), "many.png has too many pixels")


def test_colorizer_pixel_guard_still_applies(demo, tmp_path, monkeypatch):
    photo = gray_photo(tmp_path / "huge.png")
    monkeypatch.setattr(ip, "_available_memory", lambda: 1000)
    assert_refused(demo.run(str(photo)), "huge.png is too large to colorize here", "GiB")


def test_no_upload_asks_for_one(demo):
    assert_refused(demo.run(None), "Upload a photo")


def test_colour_upload_is_left_alone_with_a_warning_unless_recolor(demo, tmp_path, recwarn):
    photo = colour_photo(tmp_path / "kodachrome.png")
    kept = demo.run(str(photo))
    assert "kodachrome.png already has colour" in kept.message and "Recolor" in kept.message
    assert kept.colour is None and kept.download is None and kept.gray is not None
    recoloured = demo.run(str(photo), recolor=True)
    assert recoloured.download is not None and "own colours replaced" in recoloured.message
    assert not [w for w in recwarn if "already has colour" in str(w.message)]  # the page said it; no log noise


def test_model_choices_are_the_launch_models_bundled_first_and_nothing_else(demo, models, tmp_path):
    assert demo.model_choices == [BUNDLED_MODEL, "runs/other"]
    loaded = web.load_models([None, "runs/a", None, "runs/a", "runs/b"], loader=lambda spec: f"model {spec}")
    assert loaded == {BUNDLED_MODEL: "model None", "runs/a": "model runs/a", "runs/b": "model runs/b"}
    photo = str(gray_photo(tmp_path / "p.png"))
    first = np.asarray(Image.open(demo.run(photo, model=BUNDLED_MODEL).download))
    second = np.asarray(Image.open(demo.run(photo, model="runs/other").download))
    expected = np.asarray(models["runs/other"].colorize(Image.open(photo)))
    np.testing.assert_array_equal(second, expected)
    assert not np.array_equal(first, second)
    assert_refused(demo.run(photo, model="/etc/passwd"), "Unknown model", "runs/other")


def test_working_size_and_saturation_apply_to_one_request_only(demo, models, tmp_path, monkeypatch):
    model = models[BUNDLED_MODEL]
    seen = []
    original = model.colorize
    monkeypatch.setattr(model, "colorize", lambda *a, **k: seen.append((model.working_size, k)) or original(*a, **k))
    result = demo.run(str(gray_photo(tmp_path / "p.png")), working_size=64, saturation=0.0)
    assert seen[0][0] == 64 and seen[0][1]["saturation"] == 0.0
    assert model.working_size == 32  # the model's own size is back for the next request
    rgb = np.asarray(Image.open(result.download)).astype(int)
    assert np.abs(rgb - rgb[..., :1]).max() <= 1  # saturation 0: no colour at all
    assert demo.working_size_choices() == [32, 128, 192, 256, 384, 512]
    assert_refused(demo.run(str(tmp_path / "p.png"), working_size=16), "working size", "at least 32")
    for bad in (5.0, -0.1, float("nan"), "lots", True):
        assert_refused(demo.run(str(tmp_path / "p.png"), saturation=bad), "saturation must be a number in [0, 4]")


def test_only_the_latest_results_stay_on_disk_and_close_removes_them(demo, tmp_path):
    photo = str(gray_photo(tmp_path / "p.png"))
    downloads = [demo.run(photo).download for _ in range(web._KEEP_RESULTS + 1)]
    assert [d.exists() for d in downloads] == [False] + [True] * web._KEEP_RESULTS
    demo.close()
    assert not any(d.exists() for d in downloads)


def test_demo_refuses_bad_settings_at_construction(models):
    with pytest.raises(ValueError, match="at least one model"):
        Demo({})
    with pytest.raises(ValueError, match="max_upload_mb"):
        Demo(models, max_upload_mb=0)


def test_read_upload_opens_a_good_file(tmp_path):
    image = read_upload(gray_photo(tmp_path / "ok.png"), max_bytes=10**6)
    assert image.size == (48, 40)


# ----------------------------------------------------------------------------------- agincolor demo
@pytest.fixture()
def launched(monkeypatch):
    """Replaces the server by a record of what it would have served."""
    calls = []
    monkeypatch.setattr(web, "import_gradio", lambda: None)

    class Served:
        local_url = "http://127.0.0.1:7860/"

        def block_thread(self) -> None:
            calls.append("blocked until Ctrl+C")

    def launch(d: Demo, host: str, port: int, block: bool, quiet: bool) -> Served:
        calls.append((d.model_choices, d.max_upload_mb, host, port))
        return Served()

    monkeypatch.setattr(web, "launch", launch)
    return calls


def test_cli_demo_serves_bundled_and_given_models_on_localhost(launched, tmp_path):
    folder = tmp_path / "mine"
    tiny(2).save_pretrained(folder)
    assert cli.main(["demo", "--model", str(folder), "--device", "cpu"]) == 0
    assert launched == [([BUNDLED_MODEL, str(folder)], 50.0, "127.0.0.1", 7860), "blocked until Ctrl+C"]


def test_cli_demo_unloadable_model_is_a_usage_error_before_serving(launched, tmp_path, capsys):
    assert cli.main(["demo", "--model", str(tmp_path / "missing")]) == 2
    assert "cannot load" in capsys.readouterr().err and launched == []


def test_cli_demo_without_gradio_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` meets where it is not installed
    assert cli.main(["demo"]) == 2
    assert 'needs the demo extra: pip install "agincolor[demo]"' in capsys.readouterr().err


BAD_OPTIONS = [["--port", "70000"], ["--port", "0"], ["--max-upload-mb", "0"], ["--max-upload-mb", "nan"]]


@pytest.mark.parametrize("option", BAD_OPTIONS)
def test_cli_demo_bad_options_are_usage_errors(option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", *option])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and option[0] in err and "Traceback" not in err


# ----------------------------------------------------------------------------------- video uploads
def gray_clip(path: Path, frames: int = 6, size: tuple[int, int] = (64, 48), colour: bool = False) -> Path:
    """A short H.264 clip of a smooth texture panning by a pixel a frame (gray stored as RGB, or colour)."""
    av = pytest.importorskip("av")
    width, height = size
    rng = np.random.default_rng(3)
    big = np.kron(rng.uniform(20, 235, (height // 8 + 1, (width + frames) // 8 + 2, 3)), np.ones((8, 8, 1)))
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    for t in range(frames):
        crop = big[:height, t : t + width]
        rgb = crop if colour else np.repeat(crop.mean(axis=2, keepdims=True), 3, axis=2)
        frame = av.VideoFrame.from_ndarray(np.round(rgb).astype(np.uint8), format="rgb24")
        for packet in stream.encode(frame.reformat(format="yuv420p")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def mean_chroma(rgb: np.ndarray) -> float:
    return float(np.hypot(*np.moveaxis(ip.srgb_to_lab(rgb / 255.0)[..., 1:], -1, 0)).mean())


@pytest.fixture()
def video_demo(models: dict[str, Colorizer], tmp_path: Path) -> Demo:
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    d = Demo(models, max_upload_mb=0.2, output_dir=tmp_path / "results")
    yield d
    d.close()


def test_gray_video_upload_gives_a_colour_mp4_of_the_same_frames_and_size(video_demo, tmp_path):
    from agincolor.video import iter_frames

    clip = gray_clip(tmp_path / "reel_1.mp4")
    result = video_demo.run_video(str(clip))
    assert result.video is not None and result.video.name == "reel_1_colour.mp4"
    assert result.video.parent.parent == tmp_path / "results"
    frames = [rgb for rgb, _ in iter_frames(result.video)]
    assert len(frames) == 6 and all(rgb.shape == (48, 64, 3) for rgb in frames)
    source = [rgb for rgb, _ in iter_frames(clip)]
    assert max(mean_chroma(rgb) for rgb in source) < 1.0 < min(mean_chroma(rgb) for rgb in frames)
    assert "Colorized reel\\_1.mp4" in result.message and "6 frames" in result.message
    assert "scene cuts" in result.message and "Traceback" not in result.message
    again = video_demo.run_video(str(clip), saturation=0.0, temporal_strength=0.0)
    assert again.video != result.video and result.video.exists()  # each result in a folder of its own
    assert max(mean_chroma(rgb) for rgb, _ in iter_frames(again.video)) < 1.0  # saturation 0: gray


@pytest.mark.parametrize("content", [b"\x00\x00\x00\x18ftypmp42 broken" * 20, b"just some notes\n"])
def test_corrupt_or_non_video_upload_is_a_message_naming_it(video_demo, tmp_path, content):
    bad = tmp_path / "wedding.mp4"
    bad.write_bytes(content)
    result = video_demo.run_video(str(bad))
    assert result.video is None
    assert "wedding.mp4 is not a video agincolor can read" in result.message and "Traceback" not in result.message


def test_video_over_the_upload_cap_or_missing_is_refused(video_demo, tmp_path):
    big = tmp_path / "long.mp4"
    big.write_bytes(np.random.default_rng(0).bytes(250_000))  # a cap of 0.2 MB is 200,000 bytes
    result = video_demo.run_video(str(big))
    assert result.video is None and "long.mp4 is too large" in result.message and "up to 0.2 MB" in result.message
    assert "Upload a video" in video_demo.run_video(None).message
    assert "temporal strength must be a number in [0, 1]" in video_demo.run_video(str(big), temporal_strength=2).message
    assert not list((tmp_path / "results").iterdir())  # nothing written for a refusal


def test_colour_video_is_left_alone_with_a_warning_unless_recolor(video_demo, tmp_path, recwarn):
    clip = gray_clip(tmp_path / "holiday.mp4", colour=True)
    kept = video_demo.run_video(str(clip))
    assert kept.video is None and "holiday.mp4 already has colour" in kept.message and "Recolor" in kept.message
    recoloured = video_demo.run_video(str(clip), recolor=True)
    assert recoloured.video is not None and recoloured.video.exists() and "own colours replaced" in recoloured.message
    assert not [w for w in recwarn if "already has colour" in str(w.message)]


def test_video_without_the_video_extra_names_it(video_demo, tmp_path, monkeypatch):
    clip = gray_clip(tmp_path / "film.mp4")
    monkeypatch.setitem(sys.modules, "av", None)  # what `import av` meets where it is not installed
    result = video_demo.run_video(str(clip))
    assert result.video is None and 'pip install "agincolor[video]"' in result.message


def test_video_that_fails_while_colorizing_is_a_message_and_leaves_no_file(video_demo, models, tmp_path, monkeypatch):
    clip = gray_clip(tmp_path / "reel.mp4")

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(models[BUNDLED_MODEL], "colorize_video", broken)
    result = video_demo.run_video(str(clip))
    assert result.video is None and "reel.mp4 could not be colorized" in result.message
    assert "out of memory" in result.message
    assert not list((tmp_path / "results").iterdir())
    assert video_demo.run_video(str(clip), model="runs/other").video.exists()  # the next request works
