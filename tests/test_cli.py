"""End-to-end tests of the ``agincolor`` command (agincolor.cli.main), run in-process with a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from agincolor import cli
from agincolor.colorizer import Colorizer

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    Colorizer(generator=dict(base_channels=8, num_groups=8, num_blocks=1), working_size=32).save_pretrained(folder)
    return folder


def _noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random gray levels; with 3 or 4 channels a gray photo stored as RGB (random alpha), as scans often are
    (``agincolor colorize`` leaves photos that already have colour alone unless --recolor)."""
    rng = np.random.default_rng(seed)
    if len(shape) == 2:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    gray = rng.integers(0, 256, size=shape[:2], dtype=np.uint8)
    channels = [gray] * 3 + ([rng.integers(0, 256, size=shape[:2], dtype=np.uint8)] if shape[2] == 4 else [])
    return np.stack(channels, axis=-1)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """in/ with a gray PNG, a nested RGB JPEG, an RGBA PNG, a corrupt .jpg and a .txt to ignore."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(_noise((40, 32), 0), mode="L").save(root / "gray.png")
    Image.fromarray(_noise((36, 48, 3), 1), mode="RGB").save(root / "sub" / "deeper" / "photo.jpg")
    Image.fromarray(_noise((41, 33, 4), 2), mode="RGBA").save(root / "sub" / "rgba.png")
    (root / "broken.jpg").write_bytes(np.random.default_rng(3).bytes(300))
    (root / "notes.txt").write_text("not an image")
    return root


# The outputs of `photos`, relative to OUT, and the (width, height) of their inputs.
EXPECTED = {"gray.png": (32, 40), "sub/deeper/photo.png": (48, 36), "sub/rgba.png": (33, 41)}


def run(*argv: object) -> int:
    return cli.main([str(a) for a in argv])


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_colorize_folder_mirrors_tree_as_png_of_input_size_and_lists_corrupt_file(photos, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    status = run("colorize", photos, "-o", out, "--model", model_dir)
    captured = capsys.readouterr()
    assert status == 1
    assert sorted(files_under(out)) == sorted(EXPECTED)  # no .txt, no corrupt file, no temporary files
    for relative, size in EXPECTED.items():
        with Image.open(out / relative) as image:
            assert image.format == "PNG"
            assert image.size == size
    assert "broken.jpg" in captured.err and "cannot read image" in captured.err
    assert "notes.txt" not in captured.err
    assert "Traceback" not in captured.err


def test_colorize_keeps_alpha_and_input_lightness(photos, model_dir, tmp_path):
    out = tmp_path / "out"
    run("colorize", photos, "-o", out, "--model", model_dir)
    with Image.open(out / "sub" / "rgba.png") as image, Image.open(photos / "sub" / "rgba.png") as source:
        assert image.mode == "RGBA"
        assert np.array_equal(np.asarray(image.getchannel("A")), np.asarray(source.getchannel("A")))
    with Image.open(out / "gray.png") as image, Image.open(photos / "gray.png") as source:
        lightness = rgb2lab(np.asarray(image.convert("RGB")))[..., 0]
        expected = rgb2lab(np.asarray(source.convert("RGB")))[..., 0]
    assert np.abs(lightness - expected).max() < 1.0  # within uint8 rounding of the output


def test_second_run_without_overwrite_leaves_outputs_untouched_and_reports_them_skipped(
    photos, model_dir, tmp_path, capsys
):
    out = tmp_path / "out"
    run("colorize", photos, "-o", out, "--model", model_dir)
    before = files_under(out)
    mtimes = {p: (out / p).stat().st_mtime_ns for p in before}
    capsys.readouterr()
    status = run("colorize", photos, "-o", out, "--model", model_dir)
    captured = capsys.readouterr()
    assert status == 1  # the corrupt file still fails
    assert files_under(out) == before
    assert {p: (out / p).stat().st_mtime_ns for p in before} == mtimes
    assert "skipped 3 existing outputs" in captured.err
    for relative in EXPECTED:
        assert str(out / relative) in captured.err


def test_overwrite_rewrites_existing_outputs(photos, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    run("colorize", photos, "-o", out, "--model", model_dir)
    Image.new("RGB", (5, 5), "red").save(out / "gray.png")  # stale output of another size
    capsys.readouterr()
    assert run("colorize", photos, "-o", out, "--model", model_dir, "--overwrite") == 1
    with Image.open(out / "gray.png") as image:
        assert image.size == EXPECTED["gray.png"]
    assert "skipped" not in capsys.readouterr().err


def test_output_folder_equal_to_input_folder_never_replaces_inputs_even_with_overwrite(photos, model_dir, capsys):
    before = files_under(photos)
    status = run("colorize", photos, "-o", photos, "--model", model_dir, "--format", "same", "--overwrite")
    captured = capsys.readouterr()
    assert status == 1
    assert files_under(photos) == before
    for relative in ("gray.png", "sub/rgba.png", "sub/deeper/photo.jpg"):
        assert f"{photos / relative}: its output" in captured.err
    assert "would replace an input file" in captured.err


def test_png_output_that_would_replace_another_input_is_refused(tmp_path, model_dir, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(_noise((32, 32, 3), 4)).save(folder / "a.jpg")
    Image.fromarray(_noise((32, 32, 3), 5)).save(folder / "a.png")
    before = files_under(folder)
    assert run("colorize", folder, "-o", folder, "--model", model_dir, "--overwrite") == 1
    assert files_under(folder) == before
    assert capsys.readouterr().err.count("would replace an input file") == 2


def test_two_inputs_with_the_same_output_name_write_one_and_report_the_other(tmp_path, model_dir, capsys):
    first, second = tmp_path / "x" / "same.png", tmp_path / "y" / "same.jpg"
    for path, seed in ((first, 6), (second, 7)):
        path.parent.mkdir()
        Image.fromarray(_noise((32, 32, 3), seed)).save(path)
    out = tmp_path / "out"
    assert run("colorize", first, second, "-o", out, "--model", model_dir) == 1
    assert sorted(files_under(out)) == ["same.png"]
    assert "is also the output of" in capsys.readouterr().err


def test_file_inputs_go_straight_under_output_folder_and_jpg_format_drops_alpha(photos, model_dir, tmp_path):
    out = tmp_path / "out"
    inputs = (photos / "sub" / "rgba.png", photos / "gray.png")
    status = run("colorize", *inputs, "-o", out, "--model", model_dir, "--format", "jpg")
    assert status == 0
    assert sorted(files_under(out)) == ["gray.jpg", "rgba.jpg"]
    with Image.open(out / "rgba.jpg") as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", EXPECTED["sub/rgba.png"])


def test_output_folder_inside_input_folder_is_not_searched_for_inputs(photos, model_dir):
    out = photos / "colorized"
    run("colorize", photos, "-o", out, "--model", model_dir)
    run("colorize", photos, "-o", out, "--model", model_dir)
    assert sorted(files_under(out)) == sorted(EXPECTED)


def test_attention_writes_heatmap_beside_each_output(photos, model_dir, tmp_path):
    out = tmp_path / "out"
    run("colorize", photos, "-o", out, "--model", model_dir, "--attention")
    for relative, size in EXPECTED.items():
        heatmap = out / relative.replace(".png", ".attention.png")
        with Image.open(heatmap) as image:
            assert (image.mode, image.size) == ("L", size)
        assert (out / relative).is_file()


def spy_on_colorize(monkeypatch, attribute: str) -> list:
    """Record the Colorizer's ``attribute`` at each colorize call."""
    seen = []
    original = Colorizer.colorize

    def spy(self, *args, **kwargs):
        seen.append(getattr(self, attribute))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "colorize", spy)
    return seen


def test_size_option_sets_the_working_size(photos, model_dir, tmp_path, monkeypatch):
    seen = spy_on_colorize(monkeypatch, "working_size")
    run("colorize", photos / "gray.png", "-o", tmp_path / "out", "--model", model_dir, "--size", "48")
    assert seen == [48]


def test_failed_write_leaves_neither_partial_output_nor_temporary_file(
    photos, model_dir, tmp_path, monkeypatch, capsys
):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    out = tmp_path / "out"
    assert run("colorize", photos / "gray.png", "-o", out, "--model", model_dir) == 1
    assert files_under(out) == {}
    assert "disk full" in capsys.readouterr().err


def test_missing_input_exits_2_with_one_line_message(photos, model_dir, tmp_path, capsys):
    missing = tmp_path / "nope.png"
    assert run("colorize", photos, missing, "-o", tmp_path / "out", "--model", model_dir) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: input {str(missing)!r} does not exist"
    assert not (tmp_path / "out").exists()


def test_folder_without_images_exits_2(tmp_path, model_dir, capsys):
    (tmp_path / "empty").mkdir()
    assert run("colorize", tmp_path / "empty", "-o", tmp_path / "out", "--model", model_dir) == 2
    assert "no image files" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["empty folder", "corrupt weights", "unknown config key", "config not json"])
def test_bad_model_folder_exits_2_with_clear_message_and_no_traceback(photos, model_dir, tmp_path, capsys, damage):
    bad = tmp_path / "bad"
    bad.mkdir()
    if damage != "empty folder":
        (bad / "config.json").write_text((model_dir / "config.json").read_text())
        (bad / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    if damage == "corrupt weights":
        (bad / "model.safetensors").write_bytes(b"\x00" * 64)
    elif damage == "unknown config key":
        (bad / "config.json").write_text(json.dumps({"colour_depth": 8}))
    elif damage == "config not json":
        (bad / "config.json").write_text("{ not json")
    assert run("colorize", photos, "-o", tmp_path / "out", "--model", bad) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot load {str(bad)!r}: ")
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def _save_tiny_bins_model(folder: Path) -> Path:
    """A tiny untrained model that predicts ab bins, saved in ``folder`` (returned)."""
    Colorizer(
        generator=dict(base_channels=8, num_groups=8, num_blocks=1, head="logits", out_channels=484),
        working_size=32,
        ab_bins={"bin_size": 10.0, "limit": 110.0},
    ).save_pretrained(folder)
    return folder


def test_temperature_option_sets_a_bins_models_temperature_and_is_refused_for_image_models(
    photos, model_dir, tmp_path, monkeypatch, capsys
):
    bins_dir = _save_tiny_bins_model(tmp_path / "bins")
    seen = spy_on_colorize(monkeypatch, "temperature")
    assert run("colorize", photos / "gray.png", "-o", tmp_path / "out", "--model", bins_dir, "--temperature", "0.7") == 0
    assert seen == [0.7] and (tmp_path / "out" / "gray.png").is_file()
    assert run("colorize", photos / "gray.png", "-o", tmp_path / "out2", "--model", model_dir, "--temperature", "0.7") == 2
    assert "--temperature applies only to a model that predicts colour bins" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
    with pytest.raises(SystemExit):
        run("evaluate", photos, "--model", bins_dir, "--temperature", "0")


def test_decoding_option_sets_a_bins_models_decoding_and_is_refused_for_image_models(
    photos, model_dir, tmp_path, monkeypatch, capsys
):
    bins_dir = _save_tiny_bins_model(tmp_path / "bins")
    seen = spy_on_colorize(monkeypatch, "decoding")
    assert run("colorize", photos / "gray.png", "-o", tmp_path / "out", "--model", bins_dir, "--decoding", "srgb-mean") == 0
    assert run("colorize", photos / "gray.png", "-o", tmp_path / "out1", "--model", bins_dir) == 0
    assert seen == ["srgb-mean", "ab-mean"] and (tmp_path / "out" / "gray.png").is_file()
    assert run("colorize", photos / "gray.png", "-o", tmp_path / "out2", "--model", model_dir, "--decoding", "srgb-mean") == 2
    assert "--decoding applies only to a model that predicts colour bins" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
    with pytest.raises(SystemExit):
        run("evaluate", photos, "--model", bins_dir, "--decoding", "rgb")


def test_brightness_option_keeps_the_inputs_luma(photos, model_dir, tmp_path, capsys):
    source = np.asarray(Image.open(photos / "gray.png")).astype(int)
    assert run("colorize", photos / "gray.png", "-o", tmp_path / "luma", "--model", model_dir, "--brightness", "luma") == 0
    assert run("colorize", photos / "gray.png", "-o", tmp_path / "lightness", "--model", model_dir) == 0
    luma = np.asarray(Image.open(tmp_path / "luma" / "gray.png").convert("L")).astype(int)
    lightness = np.asarray(Image.open(tmp_path / "lightness" / "gray.png").convert("L")).astype(int)
    assert np.abs(luma - source).max() <= 1 and np.abs(lightness - source).max() > 1
    with pytest.raises(SystemExit):
        run("evaluate", photos, "--model", model_dir, "--brightness", "Y")
    assert "invalid choice: 'Y'" in capsys.readouterr().err


def test_bad_device_exits_2(photos, model_dir, tmp_path, capsys):
    assert run("colorize", photos, "-o", tmp_path / "out", "--model", model_dir, "--device", "toaster") == 2
    assert "unknown device 'toaster'" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(photos, model_dir, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run("colorize", photos, "-o", tmp_path / "out", "--model", model_dir, "--colour")
    assert exit_info.value.code == 2


@pytest.fixture()
def colour_photos(tmp_path: Path) -> Path:
    root = tmp_path / "val"
    root.mkdir()
    yy, xx = np.mgrid[0:48, 0:48] / 47.0
    for i in range(4):
        rgb = np.stack([xx, yy, np.full_like(xx, i / 3)], axis=-1)
        Image.fromarray((rgb * 255).astype(np.uint8)).save(root / f"photo{i}.png")
    return root


def test_evaluate_prints_table_with_model_gray_baseline_and_ground_truth(colour_photos, model_dir, capsys):
    assert run("evaluate", colour_photos, "--model", model_dir) == 0
    table = capsys.readouterr().out
    assert "| 4 images, 256x256 |" in table
    for row in ("model", "gray baseline", "ground truth"):
        assert f"| {row} |" in table


def test_evaluate_json_is_strict_json_with_the_three_rows(colour_photos, model_dir, capsys):
    (colour_photos / "broken.png").write_bytes(b"not a png")
    assert run("evaluate", colour_photos, "--model", model_dir, "--json", "--limit", "3") == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
    assert data["images"] == 2  # the first 3 sorted files, one of them unreadable
    assert set(data["metrics"]) == {"model", "gray baseline", "ground truth"}
    assert set(data["metrics"]["model"]) == {"psnr", "ssim", "colorfulness", "green", "blue"}
    assert set(data["metrics"]["ground truth"]) == {"colorfulness"}
    assert "broken.png" in captured.err


def test_evaluate_of_an_already_gray_photo_gives_finite_capped_psnr_in_strict_json(tmp_path, model_dir, capsys):
    from agincolor.evaluate import PSNR_CAP

    Image.fromarray(_noise((32, 32), 8), mode="L").convert("RGB").save(tmp_path / "gray.png")
    assert run("evaluate", tmp_path, "--model", model_dir, "--json") == 0
    data = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"non-standard {name}"))
    # The gray baseline reproduces a gray photo exactly: its PSNR is capped rather than infinite.
    assert data["metrics"]["gray baseline"]["psnr"] == PSNR_CAP


def test_evaluate_missing_folder_exits_2(tmp_path, model_dir, capsys):
    assert run("evaluate", tmp_path / "nope", "--model", model_dir) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_train_help_shows_the_trainer_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run("train", "--help")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: agincolor train")
    for option in ("--data", "--cycle-weight", "--paired-weight", "--resume"):
        assert option in out


def test_train_without_training_extra_prints_install_hint(monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "agincolor.train" or m.startswith("agincolor.train.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "agincolor.train", None)  # makes the import raise ImportError
    assert run("train", "--data", "x") == 2
    hint = 'agincolor train needs the training extra: pip install "agincolor[train]"'
    assert capsys.readouterr().err.splitlines()[0] == hint


def test_python_m_agincolor_version_runs_the_console_entry():
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "agincolor", "--version"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"agincolor {cli.__version__}"


def _colour_photo(seed: int) -> np.ndarray:
    """Red and blue halves over the same ramp of lightness: colour no lightness explains."""
    rng = np.random.default_rng(seed)
    ramp = np.repeat(np.linspace(60, 190, 44)[None, :, None], 36, axis=0) + rng.normal(0, 2, (36, 44, 1))
    tint = np.where(np.arange(36)[:, None, None] < 18, [50, -25, -25], [-25, 0, 50])
    return np.clip(ramp + tint, 0, 255).astype(np.uint8)


def test_photos_already_in_colour_are_left_alone_listed_and_exit_0(tmp_path, model_dir, capsys):
    folder = tmp_path / "album"
    folder.mkdir()
    Image.fromarray(_noise((40, 32), 0), mode="L").save(folder / "scan.png")
    Image.fromarray(_noise((36, 44, 3), 1)).save(folder / "scan_rgb.jpg", quality=95)
    sepia = np.clip(_noise((36, 44), 2)[..., None] * np.array([1.0, 0.85, 0.66]), 0, 255).astype(np.uint8)
    Image.fromarray(sepia).save(folder / "sepia.png")
    Image.fromarray(_colour_photo(3)).save(folder / "holiday.jpg", quality=95)
    Image.fromarray(_colour_photo(4)).save(folder / "beach.png")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skipped photos never reach the model, so nothing warns
        assert run("colorize", folder, "-o", out, "--model", model_dir) == 0
    assert sorted(files_under(out)) == ["scan.png", "scan_rgb.png", "sepia.png"]
    captured = capsys.readouterr()
    assert "left 2 photos that already have colour" in captured.err and "--recolor" in captured.err
    assert str(folder / "holiday.jpg") in captured.err and str(folder / "beach.png") in captured.err
    assert "wrote 3 images" in captured.out and "2 already in colour" in captured.out
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for: no warning per photo
        assert run("colorize", folder, "-o", out, "--model", model_dir, "--recolor") == 0
    assert sorted(files_under(out)) == ["beach.png", "holiday.png", "scan.png", "scan_rgb.png", "sepia.png"]
    with Image.open(out / "holiday.png") as image:
        assert image.size == (44, 36)
