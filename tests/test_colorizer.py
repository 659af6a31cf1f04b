"""Tests for agincolor.colorizer: any input kind in, the same kind out, the input's lightness kept exactly,
strict loading and clear errors. A tiny randomly initialised model keeps the whole file to a few seconds."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file, save_file

import agincolor.colorizer as colorizer_module
import agincolor.image_processor as image_processor
from agincolor.color import rgb_to_lab
from agincolor.colorizer import DEFAULT_MODEL_DIR, ColorizeResult, Colorizer, ImageReadError
from agincolor.generator import AB_SCALE, MIN_SIZE

# Colour photos are recoloured here on purpose: their "already has colour" warning is tested in
# test_colour_inputs_warn_naming_the_file (test_colorizer.py).
pytestmark = pytest.mark.filterwarnings("ignore:.*already has colour:UserWarning")

TINY = {"base_channels": 8, "num_groups": 8, "num_blocks": 1}
WORKING_SIZE = 32
# The output is uint8, so its L* can only match the input's to within rounding; 1.0 is the promise.
L_TOLERANCE = 1.0


def make_colorizer(seed: int = 0, **kwargs) -> Colorizer:
    """A tiny Colorizer whose random default-initialised weights already give strongly coloured output."""
    torch.manual_seed(seed)
    return Colorizer(generator=dict(TINY), working_size=WORKING_SIZE, **kwargs).eval()


@pytest.fixture(scope="module")
def model() -> Colorizer:
    return make_colorizer()


# ------------------------------------------------------------------------------------------ helpers
def lightness_of_rgb(rgb: np.ndarray) -> np.ndarray:
    """CIELAB L* (H, W) of an (H, W, 3) uint8 sRGB array, computed in float64."""
    t = torch.from_numpy(np.asarray(rgb, dtype=np.float64) / 255.0).permute(2, 0, 1)
    return rgb_to_lab(t)[0].numpy()


def lightness_of_gray(value: np.ndarray) -> np.ndarray:
    """CIELAB L* (H, W) of neutral pixels whose gamma-encoded value is ``value`` in [0, 1]."""
    t = torch.from_numpy(np.asarray(value, dtype=np.float64))[None].expand(3, -1, -1)
    return rgb_to_lab(t)[0].numpy()


def assert_lightness_kept(expected: np.ndarray, output_rgb: np.ndarray) -> None:
    got = lightness_of_rgb(output_rgb)
    assert got.shape == expected.shape
    err = np.abs(got - expected)
    worst = np.unravel_index(int(err.argmax()), err.shape)
    assert err.max() <= L_TOLERANCE, f"L* off by {err.max():.3f} at {worst}: {expected[worst]:.3f} -> {got[worst]:.3f}"


def chroma(rgb: np.ndarray) -> np.ndarray:
    lab = rgb_to_lab(torch.from_numpy(np.asarray(rgb, dtype=np.float64) / 255.0).permute(2, 0, 1))
    return torch.hypot(lab[1], lab[2]).numpy()


def random_rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


ALPHA_MODES = {"LA", "RGBA", "P+transparency"}
PIL_MODES = ["L", "LA", "RGB", "RGBA", "P", "P+transparency", "I;16", "CMYK", "1"]


def make_pil(mode: str, h: int, w: int, rng: np.random.Generator) -> tuple[Image.Image, np.ndarray, np.ndarray | None]:
    """A random PIL image of ``mode``, the L* its colorization must keep, and its alpha (or None)."""
    alpha = None
    if mode in ("L", "LA", "1"):
        gray = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
        image = Image.fromarray(gray)
        if mode == "1":
            image = image.convert("1", dither=Image.Dither.NONE)
        if mode == "LA":
            alpha = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
            image = Image.merge("LA", (image, Image.fromarray(alpha)))
        return image, lightness_of_gray(np.asarray(image.convert("L")) / 255.0), alpha
    if mode == "I;16":
        deep = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
        image = Image.frombytes("I;16", (w, h), deep.astype("<u2").tobytes())
        return image, lightness_of_gray(deep / 65535.0), None
    if mode in ("RGB", "RGBA"):
        rgb = random_rgb(rng, h, w)
        if mode == "RGBA":
            alpha = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
            image = Image.fromarray(np.dstack([rgb, alpha]))
        else:
            image = Image.fromarray(rgb)
    elif mode == "CMYK":
        cmyk = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
        image = Image.frombytes("CMYK", (w, h), cmyk.tobytes())
    else:  # P, with or without a transparent palette index
        index = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
        image = Image.frombytes("P", (w, h), index.tobytes())
        image.putpalette(rng.integers(0, 256, size=768, dtype=np.uint8).tobytes())
        if mode == "P+transparency":
            image.info["transparency"] = int(index[0, 0])
            alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    assert image.mode == mode.split("+")[0]
    return image, lightness_of_rgb(np.asarray(image.convert("RGB"))), alpha


SIZES = st.one_of(
    st.tuples(st.integers(8, 90), st.integers(8, 90)),
    st.sampled_from([(5, 120), (120, 5), (1, 64), (64, 1), (1, 1), (3, 7)]),
)


# ------------------------------------------------------------------------------ the central property
@settings(max_examples=25, deadline=None)
@given(size=SIZES, mode=st.sampled_from(PIL_MODES), seed=st.integers(0, 2**32 - 1))
def test_colorize_keeps_size_mode_alpha_and_lightness_of_any_pil_image(
    model: Colorizer, size: tuple[int, int], mode: str, seed: int
) -> None:
    h, w = size
    image, expected_l, alpha = make_pil(mode, h, w, np.random.default_rng(seed))
    out = model.colorize(image)
    assert isinstance(out, Image.Image)
    assert out.size == (w, h)
    assert out.mode == ("RGBA" if mode in ALPHA_MODES else "RGB")
    out_arr = np.asarray(out)
    assert_lightness_kept(expected_l, out_arr[..., :3])
    if alpha is not None:
        np.testing.assert_array_equal(out_arr[..., 3], alpha)


def test_colorize_adds_colour_to_a_gray_image(model: Colorizer) -> None:
    gray = np.tile(np.linspace(30, 220, 64).astype(np.uint8), (48, 1))
    out = model.colorize(gray)
    assert out.shape == (48, 64, 3)
    # Not a gray copy: the random model paints clearly visible chroma.
    assert chroma(out).mean() > 5.0


def test_luminance_is_kept_on_a_300x200_gradient(model: Colorizer) -> None:
    h, w = 200, 300
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=-1).astype(np.uint8)
    out = model.colorize(Image.fromarray(rgb))
    assert out.size == (w, h) and out.mode == "RGB"
    assert_lightness_kept(lightness_of_rgb(rgb), np.asarray(out))


# ------------------------------------------------------------------------------------------- alpha
def test_rgba_pil_alpha_is_kept_exactly(model: Colorizer) -> None:
    rng = np.random.default_rng(1)
    rgba = np.dstack([random_rgb(rng, 33, 41), rng.integers(0, 256, size=(33, 41), dtype=np.uint8)])
    out = np.asarray(model.colorize(Image.fromarray(rgba)))
    assert out.shape == (33, 41, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_numpy_hw4_alpha_is_kept_exactly(model: Colorizer, dtype: type) -> None:
    rng = np.random.default_rng(2)
    if dtype == np.float32:
        arr = rng.random((30, 37, 4), dtype=np.float32)
    else:
        arr = rng.integers(0, np.iinfo(dtype).max + 1, size=(30, 37, 4), dtype=dtype)
    out = model.colorize(arr)
    assert out.shape == (30, 37, 4) and out.dtype == dtype
    np.testing.assert_array_equal(out[..., 3], arr[..., 3])


def test_tensor_4hw_alpha_is_kept_exactly(model: Colorizer) -> None:
    torch.manual_seed(3)
    t = torch.rand(4, 35, 40)
    out = model.colorize(t)
    assert out.shape == (4, 35, 40) and out.dtype == torch.float32
    assert torch.equal(out[3], t[3])


# ------------------------------------------------------------------------------------------- kinds
def test_numpy_gray_uint8_gives_hw3_uint8_with_its_lightness(model: Colorizer) -> None:
    gray = np.random.default_rng(4).integers(0, 256, size=(37, 53), dtype=np.uint8)
    out = model.colorize(gray)
    assert isinstance(out, np.ndarray) and out.shape == (37, 53, 3) and out.dtype == np.uint8
    assert_lightness_kept(lightness_of_gray(gray / 255.0), out)


def test_numpy_hw1_is_treated_as_gray(model: Colorizer) -> None:
    gray = np.random.default_rng(5).integers(0, 256, size=(36, 40, 1), dtype=np.uint8)
    out = model.colorize(gray)
    assert out.shape == (36, 40, 3) and out.dtype == np.uint8
    assert_lightness_kept(lightness_of_gray(gray[..., 0] / 255.0), out)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_float_rgb_gives_the_same_float_dtype_in_unit_range(model: Colorizer, dtype: type) -> None:
    rgb = np.random.default_rng(6).random((40, 34, 3)).astype(dtype)
    out = model.colorize(rgb)
    assert out.shape == (40, 34, 3) and out.dtype == dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    expected = rgb_to_lab(torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1))[0].numpy()
    assert_lightness_kept(expected, np.round(out.astype(np.float64) * 255.0))


@pytest.mark.parametrize("shape", [(31, 45), (31, 45, 3)])
def test_numpy_uint16_gives_uint16(model: Colorizer, shape: tuple[int, ...]) -> None:
    deep = np.random.default_rng(7).integers(0, 65536, size=shape, dtype=np.uint16)
    out = model.colorize(deep)
    assert out.shape == (31, 45, 3) and out.dtype == np.uint16
    if deep.ndim == 2:
        assert_lightness_kept(lightness_of_gray(deep / 65535.0), out / 257.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_tensor_3hw_float_gives_3hw_of_the_same_dtype_in_unit_range(model: Colorizer, dtype: torch.dtype) -> None:
    torch.manual_seed(8)
    t = torch.rand(3, 42, 38).to(dtype)
    out = model.colorize(t)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 42, 38) and out.dtype == dtype
    assert out.min() >= 0 and out.max() <= 1
    expected = rgb_to_lab(t.double())[0].numpy()
    assert_lightness_kept(expected, (out.double() * 255).round().permute(1, 2, 0).numpy())


def test_tensor_1hw_gives_3hw(model: Colorizer) -> None:
    torch.manual_seed(9)
    t = torch.rand(1, 33, 47)
    out = model.colorize(t)
    assert out.shape == (3, 33, 47) and out.dtype == torch.float32
    assert_lightness_kept(lightness_of_gray(t[0].double().numpy()), (out.double() * 255).round().permute(1, 2, 0).numpy())


def test_tensor_uint8_gives_uint8(model: Colorizer) -> None:
    t = torch.randint(0, 256, (3, 32, 36), dtype=torch.uint8)
    out = model.colorize(t)
    assert out.shape == (3, 32, 36) and out.dtype == torch.uint8


def test_batched_tensor_gives_batch_matching_one_by_one(model: Colorizer) -> None:
    torch.manual_seed(10)
    batch = torch.rand(3, 3, 40, 44)
    out = model.colorize(batch)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 3, 40, 44) and out.dtype == torch.float32
    for i in range(3):
        # Equal up to float rounding of the network (at most one uint8 level after quantisation).
        assert (out[i] - model.colorize(batch[i])).abs().max() <= 1.0 / 255 + 1e-6


def test_list_of_mixed_inputs_gives_a_list_of_the_same_kinds_in_order(model: Colorizer, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    path = tmp_path / "photo.png"
    Image.fromarray(random_rgb(rng, 50, 60)).save(path)
    inputs = [
        Image.fromarray(random_rgb(rng, 40, 45)),
        rng.integers(0, 256, size=(41, 46), dtype=np.uint8),
        torch.rand(3, 42, 47),
        str(path),
        Image.fromarray(random_rgb(rng, 43, 48)).convert("L"),
    ]
    out = model.colorize(inputs)
    assert isinstance(out, list) and len(out) == len(inputs)
    assert isinstance(out[0], Image.Image) and out[0].size == (45, 40)
    assert isinstance(out[1], np.ndarray) and out[1].shape == (41, 46, 3) and out[1].dtype == np.uint8
    assert isinstance(out[2], torch.Tensor) and out[2].shape == (3, 42, 47)
    assert isinstance(out[3], Image.Image) and out[3].size == (60, 50)
    assert isinstance(out[4], Image.Image) and out[4].size == (48, 43) and out[4].mode == "RGB"
    # Each list item comes out as it would alone (same images, so grouping must not reorder them).
    for item, got in zip(inputs, out):
        alone = model.colorize(item)
        a = np.asarray(alone, dtype=np.float64) if not isinstance(alone, torch.Tensor) else alone.numpy() * 255
        b = np.asarray(got, dtype=np.float64) if not isinstance(got, torch.Tensor) else got.numpy() * 255
        assert np.abs(a - b).max() <= 1.0 + 1e-4


def test_a_tuple_gives_a_list(model: Colorizer) -> None:
    gray = np.zeros((32, 32), dtype=np.uint8)
    out = model.colorize((gray, gray))
    assert isinstance(out, list) and len(out) == 2


@pytest.mark.parametrize("as_path", [str, Path], ids=["str", "Path"])
def test_a_file_path_gives_a_pil_image(model: Colorizer, tmp_path: Path, as_path: type) -> None:
    rgb = random_rgb(np.random.default_rng(12), 39, 51)
    path = tmp_path / "in.png"
    Image.fromarray(rgb).save(path)
    out = model.colorize(as_path(path))
    assert isinstance(out, Image.Image) and out.size == (51, 39) and out.mode == "RGB"
    assert_lightness_kept(lightness_of_rgb(rgb), np.asarray(out))


def test_exif_orientation_is_applied_to_files_and_pil_images(model: Colorizer, tmp_path: Path) -> None:
    rgb = random_rgb(np.random.default_rng(13), 30, 50)  # 50 wide, 30 high
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(rgb).save(path, exif=exif)
    assert model.colorize(path).size == (30, 50)
    with Image.open(path) as opened:
        assert opened.size == (50, 30)
        assert model.colorize(opened).size == (30, 50)


def test_a_premultiplied_la_image_is_colorized_with_its_alpha(model: Colorizer) -> None:
    rng = np.random.default_rng(27)
    planes = [Image.fromarray(rng.integers(0, 256, size=(32, 40), dtype=np.uint8)) for _ in range(2)]
    image = Image.merge("LA", planes).convert("La")
    assert image.mode == "La"
    out = model.colorize(image)
    assert out.mode == "RGBA" and out.size == (40, 32)
    np.testing.assert_array_equal(np.asarray(out)[..., 3], np.asarray(image)[..., 1])


# --------------------------------------------------------------------------------------- attention
def test_attention_of_a_pil_image_is_an_l_image_of_its_size(model: Colorizer) -> None:
    image = Image.fromarray(random_rgb(np.random.default_rng(14), 45, 61))
    result = model.colorize(image, return_attention=True)
    assert isinstance(result, ColorizeResult)
    assert isinstance(result.image, Image.Image) and result.image.size == (61, 45)
    assert isinstance(result.attention, Image.Image)
    assert result.attention.mode == "L" and result.attention.size == (61, 45)


def test_attention_of_a_numpy_image_is_float32_hw_in_unit_range(model: Colorizer) -> None:
    gray = np.random.default_rng(15).integers(0, 256, size=(44, 58), dtype=np.uint8)
    image, attention = model.colorize(gray, return_attention=True)
    assert image.shape == (44, 58, 3)
    assert attention.dtype == np.float32 and attention.shape == (44, 58)
    assert attention.min() >= 0.0 and attention.max() <= 1.0
    assert np.isfinite(attention).all()


def test_attention_of_tensors_is_1hw_or_n1hw_in_unit_range(model: Colorizer) -> None:
    torch.manual_seed(16)
    image, attention = model.colorize(torch.rand(3, 36, 52), return_attention=True)
    assert image.shape == (3, 36, 52)
    assert attention.shape == (1, 36, 52) and attention.is_floating_point()
    assert attention.min() >= 0 and attention.max() <= 1
    images, attentions = model.colorize(torch.rand(2, 3, 36, 52), return_attention=True)
    assert images.shape == (2, 3, 36, 52) and attentions.shape == (2, 1, 36, 52)
    assert attentions.min() >= 0 and attentions.max() <= 1


def test_attention_for_a_list_gives_a_list_of_results(model: Colorizer) -> None:
    gray = np.full((32, 40), 128, dtype=np.uint8)
    results = model.colorize([gray, gray], return_attention=True)
    assert len(results) == 2 and all(isinstance(r, ColorizeResult) for r in results)
    assert all(r.attention.shape == (32, 40) for r in results)


# -------------------------------------------------------------------------------------- batch size
def test_batch_size_does_not_change_the_outputs(model: Colorizer) -> None:
    rng = np.random.default_rng(17)
    images = [Image.fromarray(random_rgb(rng, 40, 50)) for _ in range(5)]
    one = [np.asarray(o, dtype=np.int16) for o in model.colorize(images, batch_size=1)]
    four = [np.asarray(o, dtype=np.int16) for o in model.colorize(images, batch_size=4)]
    for a, b in zip(one, four):
        # Convolutions sum in a batch-size-dependent order, so the network's float output may differ by
        # about 1e-6; a pixel on a rounding boundary can then move by one uint8 level, never more.
        assert np.abs(a - b).max() <= 1
        assert (a != b).mean() < 0.01


@pytest.mark.parametrize("batch_size", [0, -1, True, 1.5, "4"])
def test_invalid_batch_size_is_refused(model: Colorizer, batch_size: object) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        model.colorize(np.zeros((32, 32), dtype=np.uint8), batch_size=batch_size)


# -------------------------------------------------------------------------------------- saturation
def assert_neutral(rgb: np.ndarray) -> None:
    rgb = rgb.astype(np.int16)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 1
    assert np.abs(rgb[..., 1] - rgb[..., 2]).max() <= 1


def test_saturation_zero_gives_a_gray_output_with_the_inputs_lightness(model: Colorizer) -> None:
    rgb = random_rgb(np.random.default_rng(18), 40, 52)
    out = model.colorize(rgb, saturation=0)
    assert_neutral(out)
    assert_lightness_kept(lightness_of_rgb(rgb), out)
    assert chroma(model.colorize(rgb)).mean() > 5.0  # the override is per call only


def test_saturation_zero_in_the_config_gives_a_gray_output() -> None:
    gray_model = make_colorizer(saturation=0.0)
    assert_neutral(gray_model.colorize(random_rgb(np.random.default_rng(19), 33, 33)))
    # ... unless the call asks for colour.
    assert chroma(gray_model.colorize(random_rgb(np.random.default_rng(19), 33, 33), saturation=1.0)).mean() > 5.0


@pytest.mark.parametrize("saturation", [-0.1, 4.01, float("nan"), True, "1"])
def test_invalid_saturation_is_refused_by_colorize_and_the_constructor(model: Colorizer, saturation: object) -> None:
    with pytest.raises(ValueError, match="saturation"):
        model.colorize(np.zeros((32, 32), dtype=np.uint8), saturation=saturation)
    with pytest.raises(ValueError, match="saturation"):
        Colorizer(generator=dict(TINY), working_size=WORKING_SIZE, saturation=saturation)


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("bad", [object(), 42, None, b"bytes", {"image": 1}], ids=lambda b: type(b).__name__)
def test_a_non_image_object_raises_type_error(model: Colorizer, bad: object) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        model.colorize(bad)
    with pytest.raises(TypeError):
        model.colorize([np.zeros((32, 32), dtype=np.uint8), bad])


def test_a_missing_file_raises_image_read_error_naming_it(model: Colorizer, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_photo.png"
    with pytest.raises(ImageReadError, match="no_such_photo.png"):
        model.colorize(missing)
    with pytest.raises(ValueError, match="no_such_photo.png"):  # ImageReadError is a ValueError
        model.colorize(str(missing))
    assert issubclass(ImageReadError, ValueError)


def test_a_folder_path_raises_image_read_error(model: Colorizer, tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not a file"):
        model.colorize(tmp_path)


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(random_rgb(np.random.default_rng(20), 64, 64)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(random_rgb(np.random.default_rng(21), 64, 64)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, content",
    [
        ("truncated.png", lambda: _png_bytes()[: len(_png_bytes()) // 2]),
        ("truncated.jpg", lambda: _jpeg_bytes()[: len(_jpeg_bytes()) // 2]),
        ("noise.png", lambda: np.random.default_rng(22).integers(0, 256, 500, dtype=np.uint8).tobytes()),
        ("empty.jpg", lambda: b""),
    ],
    ids=["truncated-png", "truncated-jpeg", "random-bytes", "empty"],
)
def test_a_corrupt_file_raises_image_read_error_and_writes_nothing(
    model: Colorizer, tmp_path: Path, name: str, content
) -> None:
    path = tmp_path / name
    path.write_bytes(content())
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ImageReadError, match=re.escape(name)):
        model.colorize(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "array",
    [np.zeros((0, 10), np.uint8), np.zeros((10, 0, 3), np.uint8), np.zeros((0,), np.uint8), np.zeros((0, 0), np.float32)],
    ids=["0x10", "10x0x3", "1d-empty", "0x0-float"],
)
def test_a_zero_size_array_raises_value_error(model: Colorizer, array: np.ndarray) -> None:
    with pytest.raises(ValueError):
        model.colorize(array)


def test_a_zero_size_tensor_raises_value_error(model: Colorizer) -> None:
    with pytest.raises(ValueError, match="zero size"):
        model.colorize(torch.zeros(3, 0, 10))


@pytest.mark.parametrize("shape", [(20, 20, 5), (1, 20, 20, 3), (20,), (20, 20, 2)])
def test_a_wrongly_shaped_array_raises_value_error_naming_the_shape(model: Colorizer, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        model.colorize(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("shape", [(5, 20, 20), (2, 20), (1, 1, 3, 20, 20)])
def test_a_wrongly_shaped_tensor_raises_value_error(model: Colorizer, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        model.colorize(torch.zeros(shape))


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_, np.int64, np.int8], ids=lambda d: np.dtype(d).name)
def test_an_unsupported_numpy_dtype_raises_type_error_naming_it(model: Colorizer, dtype: type) -> None:
    with pytest.raises(TypeError, match=np.dtype(dtype).name):
        model.colorize(np.zeros((32, 32, 3), dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.int16], ids=str)
def test_an_unsupported_tensor_dtype_raises_type_error_naming_it(model: Colorizer, dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match=str(dtype)):
        model.colorize(torch.zeros(3, 32, 32, dtype=dtype))


@pytest.mark.parametrize("value", [1.5, -0.5, float("nan"), float("inf")])
def test_a_float_outside_the_unit_range_raises_value_error(model: Colorizer, value: float) -> None:
    arr = np.full((32, 32, 3), 0.5, dtype=np.float32)
    arr[3, 4, 1] = value
    original = arr.copy()
    with pytest.raises(ValueError, match=r"\[0, 1\]|NaN"):
        model.colorize(arr)
    np.testing.assert_array_equal(arr, original)  # the input is left untouched
    t = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    with pytest.raises(ValueError, match=r"\[0, 1\]|NaN"):
        model.colorize(t)


@pytest.mark.parametrize("return_attention", [False, True])
def test_an_empty_batch_tensor_gives_an_empty_batch_or_a_value_error(model: Colorizer, return_attention: bool) -> None:
    try:
        out = model.colorize(torch.zeros(0, 3, 32, 32), return_attention=return_attention)
    except ValueError:
        return
    image = out.image if return_attention else out
    assert image.shape == (0, 3, 32, 32)


@pytest.mark.parametrize("value", [2.0, float("nan")])
def test_a_float_alpha_outside_the_unit_range_raises_value_error(model: Colorizer, value: float) -> None:
    arr = np.full((32, 32, 4), 0.5, dtype=np.float32)
    arr[5, 6, 3] = value
    with pytest.raises(ValueError):
        model.colorize(arr)
    with pytest.raises(ValueError):
        model.colorize(torch.from_numpy(arr).permute(2, 0, 1).contiguous())


def test_an_image_too_large_for_memory_raises_memory_error_in_gib(model: Colorizer, monkeypatch) -> None:
    monkeypatch.setattr(image_processor, "_available_memory", lambda: 10_000)
    for image in (np.zeros((100, 100), np.uint8), Image.new("RGB", (100, 100)), torch.zeros(3, 100, 100)):
        with pytest.raises(MemoryError, match="GiB"):
            model.colorize(image)
    # An image that fits still works under the same limit.
    monkeypatch.setattr(image_processor, "_available_memory", lambda: 10**9)
    assert model.colorize(np.zeros((100, 100), np.uint8)).shape == (100, 100, 3)


def test_unknown_available_memory_skips_the_memory_check(model: Colorizer, monkeypatch) -> None:
    monkeypatch.setattr(image_processor, "_available_memory", lambda: None)
    assert model.colorize(np.zeros((40, 40), np.uint8)).shape == (40, 40, 3)


# --------------------------------------------------------------------------------- save and load
@pytest.fixture()
def saved(model: Colorizer, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    return folder


def test_save_then_load_gives_identical_outputs(model: Colorizer, saved: Path) -> None:
    assert {"config.json", "model.safetensors"} <= {p.name for p in saved.iterdir()}
    config = json.loads((saved / "config.json").read_text())
    assert config["generator"] == TINY
    assert config["working_size"] == WORKING_SIZE
    assert config["saturation"] == 1.0
    loaded = Colorizer.from_pretrained(saved)
    assert isinstance(loaded, Colorizer) and not loaded.training
    image = Image.fromarray(random_rgb(np.random.default_rng(23), 45, 50))
    np.testing.assert_array_equal(np.asarray(loaded.colorize(image)), np.asarray(model.colorize(image)))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # A str path works as well as a Path.
    assert isinstance(Colorizer.from_pretrained(str(saved)), Colorizer)


def test_a_batch_norm_model_colorizes_with_its_running_statistics_in_any_mode(tmp_path: Path) -> None:
    torch.manual_seed(0)
    bn = Colorizer(generator={**TINY, "encoder_norm": "bn"}, working_size=WORKING_SIZE)
    with torch.no_grad():  # statistics unlike a fresh layer's, as after training
        for m in bn.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    rng = np.random.default_rng(5)
    photos = [Image.fromarray(random_rgb(rng, 40, 48)) for _ in range(3)]
    assert bn.training  # built directly, not loaded: still in training mode
    alone = np.asarray(bn.colorize(photos[0]))
    together = bn.colorize(photos)
    # No batch statistics: the same photo alone or in a batch, to within one level of batched float rounding.
    assert np.abs(np.asarray(together[0], dtype=int) - alone).max() <= 1
    assert bn.training
    for key, value in bn.state_dict().items():
        assert torch.equal(value, before[key]), key  # colorizing never updates the model
    bn.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["generator"]["encoder_norm"] == "bn"
    loaded = Colorizer.from_pretrained(tmp_path)
    np.testing.assert_array_equal(np.asarray(loaded.colorize(photos[0])), alone)


def test_saved_saturation_is_restored(tmp_path: Path) -> None:
    make_colorizer(saturation=0.25).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["saturation"] == 0.25
    assert Colorizer.from_pretrained(tmp_path).saturation == 0.25


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_a_folder_missing_a_file_raises_file_not_found_naming_it(saved: Path, name: str) -> None:
    (saved / name).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(name)):
        Colorizer.from_pretrained(saved)


def test_corrupt_safetensors_raises_value_error(saved: Path) -> None:
    (saved / "model.safetensors").write_bytes(np.random.default_rng(24).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="safetensors"):
        Colorizer.from_pretrained(saved)


def _rewrite_weights(folder: Path, change) -> str:
    state = load_file(str(folder / "model.safetensors"))
    key = change(state)
    save_file(state, str(folder / "model.safetensors"))
    return key


def test_weights_with_a_missing_key_raise_value_error_naming_it(saved: Path) -> None:
    def drop(state: dict) -> str:
        key = sorted(state)[-1]
        del state[key]
        return key

    key = _rewrite_weights(saved, drop)
    with pytest.raises(ValueError, match=re.escape(key)):
        Colorizer.from_pretrained(saved)


def test_weights_with_an_extra_key_raise_value_error_naming_it(saved: Path) -> None:
    def add(state: dict) -> str:
        state["generator.surplus.weight"] = torch.zeros(2)
        return "generator.surplus.weight"

    key = _rewrite_weights(saved, add)
    with pytest.raises(ValueError, match=re.escape(key)):
        Colorizer.from_pretrained(saved)


def test_weights_with_a_wrong_shape_raise_value_error_naming_the_key(saved: Path) -> None:
    def reshape(state: dict) -> str:
        key = next(k for k, v in state.items() if v.dim() >= 1)
        state[key] = torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])
        return key

    key = _rewrite_weights(saved, reshape)
    with pytest.raises(ValueError, match=re.escape(key)):
        Colorizer.from_pretrained(saved)


def _rewrite_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_config_for_another_architecture_raises_value_error(saved: Path) -> None:
    _rewrite_config(saved, architecture="other.Model")
    with pytest.raises(ValueError, match="other.Model"):
        Colorizer.from_pretrained(saved)


def test_a_config_with_an_unknown_key_raises_value_error_naming_it(saved: Path) -> None:
    _rewrite_config(saved, colour_boost=3)
    with pytest.raises(ValueError, match="colour_boost"):
        Colorizer.from_pretrained(saved)


def test_a_config_that_does_not_match_the_weights_raises_value_error(saved: Path) -> None:
    _rewrite_config(saved, generator={"base_channels": 16, "num_groups": 8, "num_blocks": 1})
    with pytest.raises(ValueError, match="shape"):
        Colorizer.from_pretrained(saved)


def test_a_path_that_is_neither_a_folder_nor_a_hub_id_raises_file_not_found(tmp_path: Path) -> None:
    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"0")
    for name in (tmp_path / "absent" / "model", str(tmp_path / "nowhere"), a_file, "not a hub id"):
        with pytest.raises(FileNotFoundError, match="neither a model folder"):
            Colorizer.from_pretrained(name)


def test_device_and_dtype_place_the_loaded_model(model: Colorizer, saved: Path) -> None:
    loaded = Colorizer.from_pretrained(saved, device="cpu", dtype=torch.float64)
    params = list(loaded.parameters())
    assert params and all(p.dtype == torch.float64 and p.device.type == "cpu" for p in params)
    rgb = random_rgb(np.random.default_rng(25), 40, 40)
    out = loaded.colorize(rgb)
    assert out.dtype == np.uint8 and out.shape == (40, 40, 3)
    assert_lightness_kept(lightness_of_rgb(rgb), out)
    # Same weights in higher precision: the colours agree with the float32 model to within rounding.
    assert np.abs(out.astype(np.int16) - model.colorize(rgb).astype(np.int16)).max() <= 2


def test_load_weights_refuses_a_missing_file(model: Colorizer, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        make_colorizer().load_weights(tmp_path / "absent.safetensors")


@pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "model.safetensors").exists(), reason="the bundled default model is not built yet"
)
def test_the_bundled_default_model_loads_and_colorizes() -> None:
    default = Colorizer.from_pretrained()
    rgb = random_rgb(np.random.default_rng(26), 48, 64)
    out = default.colorize(Image.fromarray(rgb))
    assert out.size == (64, 48) and out.mode == "RGB"
    assert default.brightness == "luma"  # it keeps the input's gray: PIL's convert("L") of it gives the input back
    luma_in = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(np.asarray(out.convert("L")).astype(int) - luma_in).max() <= 1
    default.brightness = "lightness"
    assert_lightness_kept(lightness_of_rgb(rgb), np.asarray(default.colorize(Image.fromarray(rgb))))


def test_a_missing_bundled_model_raises_file_not_found(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(colorizer_module, "DEFAULT_MODEL_DIR", tmp_path / "pretrained")
    with pytest.raises(FileNotFoundError, match="bundled default model"):
        Colorizer.from_pretrained()


# ------------------------------------------------------------------------------ construction checks
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"working_size": MIN_SIZE - 1}, "working_size"),
        ({"working_size": 64.0}, "working_size"),
        ({"working_size": True}, "working_size"),
        ({"architecture": "other.Model"}, "architecture"),
        ({"colour_boost": 3}, "colour_boost"),
        ({"generator": {"no_such_argument": 1}}, "generator"),
        ({"generator": dict(TINY, out_channels=1)}, "out_channels"),
    ],
)
def test_invalid_constructor_arguments_raise_value_error(kwargs: dict, match: str) -> None:
    kwargs = {"generator": dict(TINY), **kwargs}
    with pytest.raises(ValueError, match=match):
        Colorizer(**kwargs)


# ----------------------------------------------------------------------------------- working shape
@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 5000), w=st.integers(1, 5000), working_size=st.sampled_from([32, 64, 100, 256, 512]))
def test_working_shape_keeps_aspect_in_multiples_of_4_and_at_least_32(h: int, w: int, working_size: int) -> None:
    hh, ww = Colorizer(generator=dict(TINY), working_size=working_size).working_shape(h, w)
    assert hh % 4 == 0 and ww % 4 == 0
    assert hh >= MIN_SIZE and ww >= MIN_SIZE
    if h >= w:
        assert hh >= ww
    if w >= h:
        assert ww >= hh
    if hh > MIN_SIZE and ww > MIN_SIZE:
        # Neither side was clamped: each side is the scaled side rounded to a multiple of 4 (off by <= 2).
        allowed = 2 / (hh - 2) + 2 / (ww - 2) + 1e-9
        assert abs(math.log(hh / ww) - math.log(h / w)) <= allowed
        scale = working_size / math.sqrt(h * w)
        assert abs(hh - h * scale) <= 2 + 1e-9 and abs(ww - w * scale) <= 2 + 1e-9


def test_working_shape_examples(model: Colorizer) -> None:
    assert model.working_shape(32, 32) == (32, 32)
    assert model.working_shape(1000, 1000) == (32, 32)
    assert model.working_shape(5, 120) == (32, 156)
    big = Colorizer(generator=dict(TINY), working_size=256)
    assert big.working_shape(256, 256) == (256, 256)
    assert big.working_shape(480, 640) == (220, 296)


# ------------------------------------------------------------------------- colour as classification
BINS = {"bin_size": 10.0, "limit": 110.0}


def make_bins_colorizer(a: float, b: float, **kwargs) -> Colorizer:
    """A tiny ab-bins Colorizer whose output layer votes for the bin of (a, b) everywhere."""
    from agincolor.color import ab_bin_index

    torch.manual_seed(0)
    model = Colorizer(
        generator=dict(TINY, head="logits", out_channels=484), working_size=WORKING_SIZE, ab_bins=BINS, **kwargs
    ).eval()
    target = int(ab_bin_index(torch.tensor([a, b]).view(2, 1, 1)))
    with torch.no_grad():
        conv = model.generator.head[0]
        conv.weight.zero_()
        conv.bias.fill_(-20.0)
        conv.bias[target] = 20.0
    return model


def test_a_bins_model_gives_its_predicted_bin_on_the_input_lightness(tmp_path: Path) -> None:
    model = make_bins_colorizer(45.0, 25.0)
    value = np.full((37, 41), 119, np.uint8)
    out = model.colorize(value)
    lab = rgb_to_lab(torch.from_numpy(out.astype(np.float64) / 255).permute(2, 0, 1))
    assert np.abs(lab[1].numpy() - 45.0).max() < 1.5 and np.abs(lab[2].numpy() - 25.0).max() < 1.5
    assert_lightness_kept(lightness_of_gray(value / 255.0), out)
    # Saved and loaded, it keeps its grid, its temperature and its outputs.
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["ab_bins"] == BINS and config["temperature"] == 0.38
    assert config["generator"]["head"] == "logits" and config["generator"]["out_channels"] == 484
    loaded = Colorizer.from_pretrained(tmp_path)
    np.testing.assert_array_equal(loaded.colorize(value), out)


def test_a_higher_temperature_averages_the_predicted_colours() -> None:
    model = make_bins_colorizer(45.0, 25.0)
    with torch.no_grad():  # a second, weaker vote for a blue bin
        model.generator.head[0].bias[7 * 22 + 6] = 19.0  # a = -35, b = -45
    value = np.full((33, 33), 119, np.uint8)
    warm = chroma(model.colorize(value))
    # The mean of two opposite hues is grayer; a call can set the temperature without touching the model.
    hot = model.colorize(value, temperature=5.0)
    assert chroma(hot).mean() < warm.mean() - 10
    np.testing.assert_array_equal(chroma(model.colorize(value)), warm)
    assert model.temperature == 0.38
    model.temperature = 5.0
    np.testing.assert_array_equal(model.colorize(value), hot)
    with pytest.raises(ValueError, match="temperature"):
        model.colorize(value, temperature=0)


def test_srgb_mean_decoding_is_a_config_choice_that_is_saved_and_loaded(tmp_path: Path) -> None:
    from agincolor.color import ab_from_bin_logits_srgb_mean, lab_l_from_srgb

    value = np.full((33, 35), 119, np.uint8)
    one = make_bins_colorizer(45.0, 25.0, decoding="srgb-mean")
    lab = rgb_to_lab(torch.from_numpy(one.colorize(value).astype(np.float64) / 255).permute(2, 0, 1))
    assert np.abs(lab[1].numpy() - 45.0).max() < 1.5 and np.abs(lab[2].numpy() - 25.0).max() < 1.5  # one bin: its colour

    model = make_bins_colorizer(45.0, 25.0, temperature=1.0)
    with torch.no_grad():  # an equal vote for a blue bin: the two decodings now disagree
        model.generator.head[0].bias[7 * 22 + 6] = 20.0  # a = -35, b = -45
    assert model.decoding == "ab-mean"
    by_ab = model.colorize(value)
    model.decoding = "srgb-mean"
    by_srgb = model.colorize(value)
    assert np.abs(by_srgb.astype(int) - by_ab.astype(int)).max() > 3
    assert_lightness_kept(lightness_of_gray(value / 255.0), by_srgb)
    # The network as runners (and the ONNX graph) see it decodes by the pixel's own lightness.
    gray = torch.rand(1, 1, 36, 40)
    with torch.no_grad():
        ab, _ = model.gray_to_chroma(gray)
        logits = model.generator((gray * 2 - 1).expand(-1, 3, -1, -1)).image  # a 3-channel network
    want = ab_from_bin_logits_srgb_mean(logits, model.ab_centers, lab_l_from_srgb(gray.expand(-1, 3, -1, -1)), 1.0)
    torch.testing.assert_close(ab, want)
    assert "srgb_table" not in model.state_dict()  # made from the config, never saved with the weights
    with pytest.raises(ValueError, match="needs the gray input"):
        model.chroma_of(logits)

    saved = make_bins_colorizer(45.0, 25.0, decoding="srgb-mean")
    saved.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["decoding"] == "srgb-mean"
    assert Colorizer.from_pretrained(tmp_path).decoding == "srgb-mean"


def test_save_pretrained_writes_the_settings_the_model_has_now(tmp_path: Path) -> None:
    model = make_bins_colorizer(45.0, 25.0)
    model.save_pretrained(tmp_path / "as_built")
    assert json.loads((tmp_path / "as_built" / "config.json").read_text()) == model.current_config()
    model.temperature, model.saturation, model.decoding, model.working_size = 1.0, 0.7, "srgb-mean", 48
    model.save_pretrained(tmp_path / "changed")
    config = json.loads((tmp_path / "changed" / "config.json").read_text())
    assert (config["temperature"], config["saturation"], config["decoding"], config["working_size"]) == (1.0, 0.7, "srgb-mean", 48)
    loaded = Colorizer.from_pretrained(tmp_path / "changed")
    assert (loaded.temperature, loaded.saturation, loaded.decoding, loaded.working_size) == (1.0, 0.7, "srgb-mean", 48)
    value = np.full((33, 35), 119, np.uint8)
    np.testing.assert_array_equal(loaded.colorize(value), model.colorize(value))


def test_resample_picks_the_filter_that_shrinks_the_gray_input_and_is_saved(tmp_path: Path) -> None:
    from agincolor.image_processor import RESAMPLINGS

    model = make_colorizer()
    assert model.resample == "bilinear"
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (90, 70), dtype=np.uint8)  # fine detail: the filters shrink it differently
    seen: list[torch.Tensor] = []
    model.generator.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    outputs = {}
    for name in ("bilinear", "bicubic", "lanczos"):
        model.resample = name
        outputs[name] = model.colorize(photo)
        h, w = model.working_shape(90, 70)
        gray = Image.fromarray((photo / 255.0).astype(np.float32), mode="F").resize((w, h), RESAMPLINGS[name])
        want = torch.from_numpy(np.clip(np.asarray(gray), 0, 1))
        assert torch.allclose((seen[-1][0, 0] + 1) / 2, want, atol=1e-6), name  # the network's input
    assert np.abs(outputs["lanczos"].astype(int) - outputs["bilinear"].astype(int)).max() > 3
    assert_lightness_kept(lightness_of_gray(photo / 255.0), outputs["lanczos"])
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["resample"] == "lanczos"
    loaded = Colorizer.from_pretrained(tmp_path)
    assert loaded.resample == "lanczos"
    np.testing.assert_array_equal(loaded.colorize(photo), outputs["lanczos"])
    with pytest.raises(ValueError, match="resample must be one of 'bilinear', 'bicubic', 'lanczos', got 'nearest'"):
        model.resample = "nearest"
    with pytest.raises(ValueError, match="resample must be one of"):
        Colorizer(generator=TINY, resample="area")
    assert model.resample == "lanczos"


def test_keep_luma_moves_each_colour_to_the_nearest_of_that_luma_and_into_the_gamut() -> None:
    from agincolor.image_processor import LUMA_WEIGHTS, keep_luma

    w = np.array(LUMA_WEIGHTS, dtype=np.float64)[:, None]
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, (3, 4000)).astype(np.float32)
    luma = rng.uniform(0, 1, 4000).astype(np.float32)
    out = keep_luma(rgb, luma).astype(np.float64)
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose((w * out).sum(0), luma, atol=2e-6)  # every colour has the luma asked for
    projected = rgb + (luma - (w * rgb).sum(0)) * w / (w * w).sum()  # nearest of that luma, computed here
    inside = ((projected >= 0) & (projected <= 1)).all(0)
    assert 0.1 < inside.mean() < 0.9
    np.testing.assert_allclose(out[:, inside], projected[:, inside], atol=2e-6)
    # Outside the gamut: on the way from the neutral gray of that luma to the projection, at the cube's face.
    away, target = out[:, ~inside] - luma[~inside], projected[:, ~inside] - luma[~inside]
    scale = (away * target).sum(0) / (target * target).sum(0)
    np.testing.assert_allclose(away, scale * target, atol=2e-6)
    assert ((scale >= 0) & (scale < 1)).all()
    assert (np.isclose(out[:, ~inside], 0, atol=1e-6) | np.isclose(out[:, ~inside], 1, atol=1e-6)).any(0).all()
    # A photo's own colours lie on its gray's plane: an estimate of them moved there is no further from them.
    truth = rng.uniform(0.2, 0.8, (3, 4000))
    guess = np.clip(truth + rng.normal(0, 0.1, truth.shape), 0, 1).astype(np.float32)
    moved = keep_luma(guess, (w * truth).sum(0).astype(np.float32))
    before, after = np.linalg.norm(guess - truth, axis=0), np.linalg.norm(moved - truth, axis=0)
    assert (after <= before + 1e-5).mean() > 0.97 and after.mean() < 0.85 * before.mean()
    on_plane = keep_luma(truth.astype(np.float32), (w * truth).sum(0).astype(np.float32))
    np.testing.assert_allclose(on_plane, truth, atol=2e-6)  # already there: unchanged


@pytest.mark.parametrize("keep", ["lightness", "luma"])
def test_join_gives_the_same_pixels_whatever_the_strip_size(monkeypatch: pytest.MonkeyPatch, keep: str) -> None:
    # The join works through strips of rows; where they end (a short last strip too) must not show.
    rng = np.random.default_rng(5)
    gray = rng.uniform(0, 1, (23, 17)).astype(np.float32)
    lightness = image_processor.lightness_from_linear_y(image_processor.srgb_to_linear(gray)).astype(np.float32)
    ab = rng.normal(0, 40, (2, 5, 4)).astype(np.float32)  # strong enough that some colours leave the gamut
    luma = gray if keep == "luma" else None
    whole = image_processor.join_lightness_and_chroma(lightness, ab, luma)
    kept = []  # every result stays alive, so none is written into the memory of one before it
    for pixels in (17, 3 * 17, 5 * 17 + 9, 1):  # one row, three rows (23 = 7 * 3 + 2), five, one row again
        monkeypatch.setattr(image_processor, "_STRIP_PIXELS", pixels)
        kept.append(image_processor.join_lightness_and_chroma(lightness, ab, luma))
        np.testing.assert_array_equal(kept[-1], whole)
    assert len(np.unique(whole.reshape(-1, 3), axis=0)) > 300  # a varied picture, not a flat one


def test_brightness_luma_gives_back_the_inputs_gray_and_is_saved(tmp_path: Path) -> None:
    model = make_colorizer()
    assert model.brightness == "lightness"
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (40, 52), dtype=np.uint8)
    kept_lightness = model.colorize(photo)
    model.brightness = "luma"
    out = model.colorize(photo)
    gray_of = lambda rgb: np.asarray(Image.fromarray(rgb).convert("L")).astype(int)  # noqa: E731
    assert np.abs(gray_of(out) - photo).max() <= 1  # PIL's own gray of the output is the input
    assert np.abs(gray_of(kept_lightness) - photo).max() > 3  # which joining at the input's L* does not give
    assert chroma(out).mean() > 0.8 * chroma(kept_lightness).mean()  # the colour stays
    colour = random_rgb(rng, 30, 34)  # a colour input keeps its own luma the same way
    assert np.abs(gray_of(model.colorize(colour)) - gray_of(colour)).max() <= 1
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["brightness"] == "luma"
    loaded = Colorizer.from_pretrained(tmp_path)
    assert loaded.brightness == "luma"
    np.testing.assert_array_equal(loaded.colorize(photo), out)
    with pytest.raises(ValueError, match="brightness must be one of 'lightness', 'luma', got 'L'"):
        model.brightness = "L"
    with pytest.raises(ValueError, match="brightness must be one of"):
        Colorizer(generator=TINY, brightness=None)
    assert model.brightness == "luma"


def test_the_sharper_filters_shrink_a_large_photo_in_blocks_first_within_a_level_of_the_direct_filter() -> None:
    from agincolor.image_processor import RESAMPLINGS, resize_gray

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:900, 0:1200]
    photo = np.clip(0.5 + 0.3 * np.sin(x / 23) * np.cos(y / 31) + 0.05 * rng.standard_normal((900, 1200)), 0, 1)
    photo = photo.astype(np.float32)
    for name, shape in (("bilinear", (96, 128)), ("bicubic", (96, 128)), ("lanczos", (96, 128)), ("bicubic", (400, 532))):
        direct = Image.fromarray(photo, mode="F").resize(shape[::-1], RESAMPLINGS[name])
        direct = np.clip(np.asarray(direct), 0, 1)
        got = resize_gray(photo, shape, name)
        assert got.shape == shape and got.dtype == np.float32
        if name == "bilinear" or shape == (400, 532):  # no block step: the bilinear filter, or under 3x smaller
            np.testing.assert_array_equal(got, direct)
        else:
            assert np.abs(got - direct).max() < 0.01 and np.abs(got - direct).mean() < 0.002, name


def test_an_unknown_decoding_or_one_for_a_model_without_bins_is_refused(model: Colorizer) -> None:
    with pytest.raises(ValueError, match="decoding must be one of 'ab-mean', 'srgb-mean', got 'rgb'"):
        make_bins_colorizer(45.0, 25.0, decoding="rgb")
    with pytest.raises(ValueError, match="only for a model that predicts ab bins"):
        Colorizer(generator=TINY, decoding="srgb-mean")
    with pytest.raises(ValueError, match="only for a model that predicts ab bins"):
        model.decoding = "srgb-mean"
    assert model.decoding == "ab-mean"


def test_temperature_is_refused_for_a_model_that_outputs_an_image(model: Colorizer) -> None:
    with pytest.raises(ValueError, match="only to a model that predicts ab bins"):
        model.colorize(np.zeros((33, 33), np.uint8), temperature=0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(generator=dict(TINY, head="logits", out_channels=484)), "needs ab_bins"),
        (dict(generator=dict(TINY), ab_bins=BINS), "only for a generator with head 'logits'"),
        (dict(generator=dict(TINY, head="logits", out_channels=100), ab_bins=BINS), "484 bins"),
        (dict(generator=dict(TINY, head="logits", out_channels=484), ab_bins={"bin_size": 10.0}), "needs ab_bins"),
        (dict(generator=dict(TINY, head="logits", out_channels=484), ab_bins=BINS, temperature=0), "temperature"),
        (dict(generator=dict(TINY, out_channels=1)), "out_channels 3"),
    ],
)
def test_a_config_whose_head_and_bins_disagree_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Colorizer(**kwargs)


# ------------------------------------------------------------------- CIELAB ab predicted directly
# EfficientNet-Lite0 encoder, one gray input channel, a 1x1 head giving (a*, b*) / AB_SCALE.
LITE0_AB = {
    "encoder": "efficientnet_lite0",
    "in_channels": 1,
    "out_channels": 2,
    "head": "ab",
    "base_channels": 8,
    "num_blocks": 1,
    "num_groups": 4,
}


def make_ab_colorizer(seed: int = 0, **kwargs) -> Colorizer:
    torch.manual_seed(seed)
    return Colorizer(generator=dict(LITE0_AB), working_size=64, **kwargs).eval()


@pytest.fixture(scope="module")
def ab_model() -> Colorizer:
    return make_ab_colorizer()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16"])
def test_an_ab_head_model_keeps_size_and_lightness_of_a_pil_image(ab_model: Colorizer, mode: str) -> None:
    h, w = 45, 70
    image, expected_l, alpha = make_pil(mode, h, w, np.random.default_rng(3))
    out = ab_model.colorize(image)
    assert isinstance(out, Image.Image) and out.size == (w, h)
    assert out.mode == ("RGBA" if mode == "RGBA" else "RGB")
    arr = np.asarray(out)
    assert_lightness_kept(expected_l, arr[..., :3])
    if alpha is not None:
        np.testing.assert_array_equal(arr[..., 3], alpha)


def test_an_ab_head_model_paints_the_ab_its_head_predicts_on_the_inputs_lightness() -> None:
    model = make_ab_colorizer()
    with torch.no_grad():  # the 1x1 head predicts (a, b) = (30, -20) everywhere
        conv = model.generator.head[0]
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([30.0, -20.0]) / AB_SCALE)
    value = np.full((40, 52), 128, np.uint8)
    out = model.colorize(value)
    assert out.shape == (40, 52, 3)
    lab = rgb_to_lab(torch.from_numpy(out.astype(np.float64) / 255).permute(2, 0, 1))
    assert np.abs(lab[1].numpy() - 30.0).max() < 1.5 and np.abs(lab[2].numpy() + 20.0).max() < 1.5
    assert_lightness_kept(lightness_of_gray(value / 255.0), out)


def test_chroma_of_an_ab_head_output_is_the_output_times_ab_scale(ab_model: Colorizer) -> None:
    torch.manual_seed(0)
    output = torch.randn(2, 2, 5, 7)
    ab = ab_model.chroma_of(output)
    assert ab.dtype == torch.float32 and ab.shape == (2, 2, 5, 7)
    torch.testing.assert_close(ab, output * AB_SCALE)
    torch.testing.assert_close(ab_model.chroma_of(output.half()), output.half().float() * AB_SCALE)


def test_an_ab_head_model_refuses_ab_bins_and_temperature(ab_model: Colorizer) -> None:
    with pytest.raises(ValueError, match="ab_bins"):
        Colorizer(generator=dict(LITE0_AB), working_size=64, ab_bins=BINS)
    with pytest.raises(ValueError, match="temperature"):
        ab_model.colorize(np.zeros((33, 33), np.uint8), temperature=0.5)


def test_an_ab_head_model_gives_attention_at_the_inputs_size(ab_model: Colorizer) -> None:
    result = ab_model.colorize(Image.fromarray(random_rgb(np.random.default_rng(4), 50, 90)), return_attention=True)
    assert isinstance(result, ColorizeResult)
    assert result.image.size == (90, 50) and result.attention.size == (90, 50) and result.attention.mode == "L"


def test_an_ab_head_model_saves_and_loads_with_identical_outputs(ab_model: Colorizer, tmp_path: Path) -> None:
    ab_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["generator"] == LITE0_AB and config["working_size"] == 64
    loaded = Colorizer.from_pretrained(tmp_path)
    assert loaded.generator.head_kind == "ab" and loaded.generator.encoder_name == "efficientnet_lite0"
    for key, value in ab_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    image = Image.fromarray(random_rgb(np.random.default_rng(6), 61, 47))
    np.testing.assert_array_equal(np.asarray(loaded.colorize(image)), np.asarray(ab_model.colorize(image)))
    gray = torch.rand(1, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(gray).image, ab_model(gray).image)


def _two_hues_at_each_lightness() -> np.ndarray:
    """A colour photo in miniature: a red and a blue half over the same ramp of lightness."""
    ramp = np.repeat(np.linspace(60, 190, 48)[None, :, None], 40, axis=0)
    tint = np.where(np.arange(40)[:, None, None] < 20, [50, -25, -25], [-25, 0, 50])
    return np.clip(ramp + tint, 0, 255).astype(np.uint8)


@pytest.mark.filterwarnings("error::UserWarning")
def test_colour_inputs_warn_naming_the_file(model: Colorizer, tmp_path: Path) -> None:
    rgb = _two_hues_at_each_lightness()
    path = tmp_path / "holiday.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    with pytest.warns(UserWarning, match=r"holiday\.jpg.*already has colour"):
        out = model.colorize(path)
    assert out.size == (48, 40)  # and it goes on, as asked
    with pytest.warns(UserWarning, match=r"holiday\.jpg"):
        model.colorize(Image.open(path))
    with pytest.warns(UserWarning, match="image 1 already has colour"):
        model.colorize([rgb[..., 0], rgb])
    with pytest.warns(UserWarning, match="the image already has colour"):
        model.colorize(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())
    # Gray inputs, gray stored as RGB and a sepia tone do not warn (the error filter would fail them).
    gray = rgb.mean(axis=2).astype(np.uint8)
    model.colorize([gray, np.repeat(gray[..., None], 3, axis=2), Image.fromarray(gray).convert("RGB")])
    sepia = np.clip(gray[..., None] * np.array([1.0, 0.85, 0.66]), 0, 255).astype(np.uint8)
    model.colorize(sepia)
