"""ONNX export (torch.onnx dynamo exporter) and OnnxColorizer (onnxruntime, no torch).

Every generator configuration is exported once (a tiny one) and checked against PyTorch; the exports are
cached for the module, so each configuration costs one export.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from agincolor import Colorizer, OnnxColorizer, export_onnx  # noqa: E402
from agincolor import cli  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = dict(base_channels=8, num_blocks=1, num_groups=4)
BINS = {"bin_size": 10.0, "limit": 110.0}

# Every generator configuration the library offers: the paper's encoder with each head and encoder norm,
# the pretrained EfficientNet-Lite0 encoder with the ab and image heads, 1 and 3 input channels.
CONFIGS: dict[str, dict[str, Any]] = {
    "paper-image-in": dict(generator=TINY),
    "paper-image-bn": dict(generator=dict(TINY, encoder_norm="bn")),
    "paper-image-gn": dict(generator=dict(TINY, encoder_norm="gn")),
    "paper-image-1ch-max": dict(generator=dict(TINY, in_channels=1, pooling=["avg", "max"])),
    "paper-logits": dict(generator=dict(TINY, head="logits", out_channels=484), ab_bins=BINS),
    "paper-logits-srgb-mean": dict(
        generator=dict(TINY, head="logits", out_channels=484), ab_bins=BINS, decoding="srgb-mean"
    ),
    "paper-ab-1ch": dict(generator=dict(TINY, head="ab", out_channels=2, in_channels=1)),
    "lite0-ab-1ch": dict(
        generator=dict(TINY, encoder="efficientnet_lite0", head="ab", out_channels=2, in_channels=1)
    ),
    "lite0-image-3ch": dict(generator=dict(TINY, encoder="efficientnet_lite0")),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache: dict[str, tuple[Colorizer, Path]] = {}
    folder = tmp_path_factory.mktemp("onnx")

    def get(name: str) -> tuple[Colorizer, Path]:
        if name not in cache:
            torch.manual_seed(0)
            model = Colorizer(working_size=48, **CONFIGS[name]).eval()
            cache[name] = (model, export_onnx(model, folder / f"{name}.onnx"))
        return cache[name]

    return get


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth gray scene with texture, as RGB uint8 (gray, so colorize does not warn)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    gray = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 11.0) + rng.normal(0, 8, (h, w))
    return np.clip(np.repeat(gray[..., None], 3, -1), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_onnx_network_matches_pytorch_at_sizes_off_the_multiples(name: str, exported: Any) -> None:
    model, path = exported(name)
    runner = OnnxColorizer(path, threads=1)
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version >= 17
    meta = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(meta["agincolor.config"])["generator"] == model.generator_config
    gray_dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in gray_dims] == [True, False, True, True]  # batch, H and W dynamic
    rng = np.random.default_rng(1)
    for shape in ((2, 1, 45, 77), (1, 1, 33, 90), (1, 1, 101, 37)):  # not multiples of 4 or 32
        gray = rng.random(shape, dtype=np.float32)
        ab, heat = runner.chroma(gray)
        want_ab, want_heat = model._chroma(gray)
        assert ab.shape == want_ab.shape == (shape[0], 2, *shape[2:])
        # ab runs to about +-110: float32 sums in another order (onnxruntime's kernels, the CPU's vector
        # width) differ by up to a few 1e-3 there, a thousandth of a just-noticeable difference (2.3).
        assert np.abs(ab - want_ab).max() < 1e-2
        assert heat.shape == want_heat.shape and np.abs(heat - want_heat).max() < 1e-3


@pytest.mark.parametrize("name", ["paper-image-in", "lite0-ab-1ch", "paper-logits", "paper-logits-srgb-mean"])
def test_the_whole_photo_is_within_one_level_of_the_pytorch_path(name: str, exported: Any) -> None:
    model, path = exported(name)
    runner = OnnxColorizer(path, threads=1)
    for h, w in ((61, 83), (130, 47)):
        photo = _photo(h, w)
        got, want = runner.colorize(photo), model.colorize(photo)
        assert got.shape == want.shape == (h, w, 3)
        # Within one level, but for the odd pixel whose colour leaves the sRGB gamut: there the clipped
        # channel turns an ab difference of 1e-3 into a few levels (3 on one pixel of 5,063 on this CPU).
        differ = np.abs(got.astype(int) - want.astype(int))
        assert differ.max() <= 4 and (differ > 1).mean() < 1e-3
        if model.ab_bins is not None:
            warmer = runner.colorize(photo, temperature=1.0)
            assert np.abs(warmer.astype(int) - model.colorize(photo, temperature=1.0).astype(int)).max() <= 1


def test_every_input_kind_but_tensors_gives_the_pytorch_kinds_and_sizes(exported: Any, tmp_path: Path) -> None:
    model, path = exported("paper-image-in")
    runner = OnnxColorizer(path, threads=1)
    gray = _photo(40, 52)[..., 0]
    file = tmp_path / "scan.png"
    Image.fromarray(gray).save(file)
    rgba = Image.fromarray(np.dstack([_photo(35, 50), np.full((35, 50), 200, np.uint8)]), mode="RGBA")
    inputs = [
        Image.fromarray(gray),
        rgba,
        Image.fromarray(gray.astype(np.uint16) * 257),
        str(file),
        file,
        gray,
        gray.astype(np.uint16) * 257,
        gray.astype(np.float32) / 255,
        np.dstack([_photo(33, 41), np.full((33, 41), 7, np.uint8)]),
    ]
    got, want = runner.colorize(inputs), model.colorize(inputs)
    assert isinstance(got, list) and len(got) == len(inputs)
    for g, w in zip(got, want):
        assert type(g) is type(w)
        g_arr, w_arr = np.asarray(g), np.asarray(w)
        assert g_arr.shape == w_arr.shape and g_arr.dtype == w_arr.dtype
        scale = 257 if w_arr.dtype == np.uint16 else (1 / 255 if w_arr.dtype.kind == "f" else 1)
        assert np.abs(g_arr.astype(np.float64) - w_arr).max() <= 1.001 * scale
    single = runner.colorize(inputs[0], return_attention=True)
    assert single.image.size == inputs[0].size and single.attention.mode == "L"
    assert single.attention.size == inputs[0].size
    with pytest.raises(TypeError, match="torch tensors"):
        runner.colorize(torch.zeros(3, 32, 32))
    with pytest.raises(TypeError, match="torch tensors"):
        runner.colorize([gray, torch.zeros(1, 32, 32)])
    with pytest.raises(ValueError, match="temperature applies only"):
        runner.colorize(gray, temperature=0.5)
    with pytest.raises(ValueError, match="saturation"):
        runner.colorize(gray, saturation=9)


def test_a_colour_photo_is_colorized_with_a_warning_naming_its_file(exported: Any, tmp_path: Path) -> None:
    _, path = exported("paper-image-in")
    runner = OnnxColorizer(path, threads=1)
    ramp = np.repeat(np.linspace(60, 190, 60)[None, :, None], 40, axis=0)  # both halves share the ramp
    tint = np.where(np.arange(40)[:, None, None] < 20, [50, -25, -25], [-25, 0, 50])  # red above, blue below
    rgb = np.clip(ramp + tint, 0, 255).astype(np.uint8)
    file = tmp_path / "holiday.png"
    Image.fromarray(rgb).save(file)
    with pytest.warns(UserWarning, match="holiday.png.*already has colour"):
        out = runner.colorize(file)
    assert out.size == (60, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner.colorize(_photo(40, 60))  # gray stored as RGB: no warning


def test_a_corrupt_file_and_mismatched_files_are_refused_clearly(exported: Any, tmp_path: Path) -> None:
    _, path = exported("paper-image-in")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(path.read_bytes()[: 5000] + b"\x00garbage")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        OnnxColorizer(corrupt)
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        OnnxColorizer(tmp_path / "absent.onnx")

    def rewrite(name: str, change: Any) -> Path:
        model = onnx.load(str(path))
        change(model)
        out = tmp_path / name
        onnx.save(model, str(out))
        return out

    def strip(model: Any) -> None:
        del model.metadata_props[:]

    with pytest.raises(ValueError, match="no agincolor config"):
        OnnxColorizer(rewrite("plain.onnx", strip))

    def other_architecture(model: Any) -> None:
        for p in model.metadata_props:
            if p.key == "agincolor.architecture":
                p.value = "other.Model"

    with pytest.raises(ValueError, match="other.Model"):
        OnnxColorizer(rewrite("other.onnx", other_architecture))

    def claims_bins(model: Any) -> None:  # a config that does not match the graph (no temperature input)
        for p in model.metadata_props:
            if p.key == "agincolor.config":
                p.value = json.dumps(dict(json.loads(p.value), ab_bins=BINS))

    with pytest.raises(ValueError, match="does not match its agincolor metadata"):
        OnnxColorizer(rewrite("mismatch.onnx", claims_bins))


def test_the_runner_works_where_importing_torch_fails(exported: Any, tmp_path: Path) -> None:
    _, path = exported("lite0-ab-1ch")
    scan = tmp_path / "scan.png"
    Image.fromarray(_photo(50, 70)[..., 0]).save(scan)
    script = textwrap.dedent(
        f"""
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is not installed here")
        sys.meta_path.insert(0, NoTorch())
        import agincolor
        from agincolor import OnnxColorizer, has_colour
        out = OnnxColorizer({str(path)!r}, threads=1).colorize({str(scan)!r})
        assert out.size == (70, 50) and out.mode == "RGB", out
        from agincolor.cli import main
        status = main(["colorize", {str(scan)!r}, "-o", {str(tmp_path / "out")!r}, "--onnx", {str(path)!r}])
        assert status == 0, status
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
        try:
            agincolor.Colorizer
        except ImportError:
            print("torch-free ok")
        """
    )
    env = {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "torch-free ok" in done.stdout
    assert (tmp_path / "out" / "scan.png").is_file()


def test_the_export_command_writes_a_file_colorize_onnx_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "model"
    torch.manual_seed(0)
    Colorizer(generator=dict(TINY, head="ab", out_channels=2, in_channels=1), working_size=40).save_pretrained(folder)
    target = tmp_path / "model.onnx"
    assert cli.main(["export", "--model", str(folder), "--onnx", str(target)]) == 0
    assert OnnxColorizer(target).working_size == 40
    assert cli.main(["export", "--model", str(folder), "--onnx", str(target)]) == 2  # exists
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(folder), "--onnx", str(tmp_path / "x.txt")]) == 2
    assert cli.main(["export", "--model", str(folder), "--onnx", str(target), "--opset", "13", "--overwrite"]) == 2
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(_photo(36, 44)[..., 0]).save(photos / "scan.png")
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "out"), "--onnx", str(target)]) == 0
    with Image.open(tmp_path / "out" / "scan.png") as out:
        assert out.size == (44, 36)
    capsys.readouterr()
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "o2"), "--onnx", str(target), "--model", str(folder)]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "o4"), "--onnx", str(target), "--device", "cuda"]) == 2
    assert "--device applies to PyTorch models" in capsys.readouterr().err
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "o5"), "--onnx", str(target), "--decoding", "srgb-mean"]) == 2
    assert "--decoding applies only to a model that predicts colour bins" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "o3"), "--onnx", str(bad)]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err


def test_the_export_command_bakes_the_chosen_decoding_into_the_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "bins"
    torch.manual_seed(0)
    model = Colorizer(generator=dict(TINY, head="logits", out_channels=484, in_channels=1), ab_bins=BINS, working_size=40)
    model.save_pretrained(folder)
    target = tmp_path / "srgb.onnx"
    assert cli.main(["export", "--model", str(folder), "--onnx", str(target), "--decoding", "srgb-mean"]) == 0
    runner = OnnxColorizer(target, threads=1)
    assert runner.decoding == "srgb-mean" and runner.config["decoding"] == "srgb-mean"
    gray = np.random.default_rng(3).random((1, 1, 37, 45), dtype=np.float32)
    model.decoding = "srgb-mean"
    assert np.abs(runner.chroma(gray)[0] - model._chroma(gray)[0]).max() < 1e-3
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(_photo(36, 44)[..., 0]).save(photos / "scan.png")
    capsys.readouterr()
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "o"), "--onnx", str(target), "--decoding", "ab-mean"]) == 2
    assert "decodes by srgb-mean; export the model again with --decoding ab-mean" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert cli.main(["colorize", str(photos), "-o", str(tmp_path / "o"), "--onnx", str(target), "--decoding", "srgb-mean"]) == 0


@pytest.mark.parametrize(
    "setting, exported, other, bad",
    [("resample", "lanczos", "bilinear", "box"), ("brightness", "luma", "lightness", "Y")],
)
def test_the_runner_follows_the_exported_models_filter_and_brightness(
    tmp_path: Path, setting: str, exported: str, other: str, bad: str
) -> None:
    torch.manual_seed(0)
    model = Colorizer(working_size=48, **{setting: exported}, **CONFIGS["paper-ab-1ch"]).eval()
    runner = OnnxColorizer(export_onnx(model, tmp_path / f"{exported}.onnx"), threads=1)
    assert getattr(runner, setting) == exported
    photo = _photo(61, 83)
    outputs = {}
    for name in (other, exported):
        setattr(model, setting, name)
        setattr(runner, setting, name)
        outputs[name] = runner.colorize(photo)
        assert np.abs(outputs[name].astype(int) - model.colorize(photo).astype(int)).max() <= 1, name
    assert np.abs(outputs[exported].astype(int) - outputs[other].astype(int)).max() > 3  # it matters
    if setting == "brightness":  # the output's own gray is the input's
        gray = np.asarray(Image.fromarray(outputs["luma"]).convert("L")).astype(int)
        assert np.abs(gray - np.asarray(Image.fromarray(photo).convert("L")).astype(int)).max() <= 1
    with pytest.raises(ValueError, match=f"{setting} must be one of"):
        setattr(runner, setting, bad)
