"""Tests for agincolor.metrics: PSNR, SSIM, colorfulness and chroma recall."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from agincolor.metrics import chroma_recall, chroma_recall_sums, colorfulness, psnr, ssim


def _skimage_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    return float(
        structural_similarity(
            a,
            b,
            channel_axis=-1 if a.ndim == 3 else None,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
        )
    )


def _noisy(image: np.ndarray, scale: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-scale, scale + 1, image.shape)
    return np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def _structured_image(height: int, width: int) -> np.ndarray:
    """Gradients, a checkerboard and a bright disc in separate channels."""
    yy, xx = np.mgrid[0:height, 0:width]
    ramp = 255.0 * xx / max(width - 1, 1)
    checker = 255.0 * (((yy // 8) + (xx // 8)) % 2)
    disc = 255.0 * ((yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 3) ** 2)
    return np.stack([ramp, checker, disc], axis=-1).astype(np.uint8)


def test_psnr_of_constant_offset_5_is_20_log10_255_over_5() -> None:
    a = np.full((16, 20, 3), 100, dtype=np.uint8)
    b = a + 5
    assert psnr(a, b) == pytest.approx(20.0 * math.log10(255.0 / 5.0), abs=1e-12)


def test_psnr_averages_squared_error_over_all_pixels_and_channels() -> None:
    a = np.zeros((2, 2, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12  # MSE = 144 / 12 = 12
    assert psnr(a, b) == pytest.approx(10.0 * math.log10(255.0**2 / 12.0), abs=1e-12)


def test_psnr_of_identical_images_is_inf() -> None:
    a = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert psnr(a, a.copy()) == float("inf")


def test_psnr_uses_data_range_for_float_images() -> None:
    a = np.full((4, 4), 0.5)
    assert psnr(a, a + 0.1, data_range=1.0) == pytest.approx(20.0, abs=1e-9)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (37, 53), (11, 11)])
def test_ssim_matches_skimage_on_random_rgb_images_within_1e3(height: int, width: int) -> None:
    a = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    b = _noisy(a, 40, seed=width)
    assert ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=1e-3)


def test_ssim_matches_skimage_on_structured_images_within_1e3() -> None:
    a = _structured_image(96, 80)
    b = _noisy(a, 25, seed=3)
    assert ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=1e-3)
    shifted = np.roll(a, 3, axis=1)
    assert ssim(a, shifted) == pytest.approx(_skimage_ssim(a, shifted), abs=1e-3)


def test_ssim_matches_skimage_on_grayscale_images_within_1e3() -> None:
    a = _structured_image(48, 64)[..., 0]
    b = _noisy(a, 30, seed=4)
    assert ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=1e-3)


def test_ssim_matches_skimage_on_float_images_with_unit_data_range() -> None:
    rng = np.random.default_rng(5)
    a = rng.random((40, 40, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    assert ssim(a, b, data_range=1.0) == pytest.approx(_skimage_ssim(a, b, 1.0), abs=1e-3)


def test_ssim_of_identical_images_is_1() -> None:
    a = _structured_image(32, 32)
    assert ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_images_smaller_than_the_window() -> None:
    a = np.zeros((10, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a, a)


def test_colorfulness_of_constant_red_is_0_3_times_mean_norm() -> None:
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[..., 0] = 255
    # rg = 255, yb = 127.5 everywhere, so both standard deviations are 0.
    expected = 0.3 * math.sqrt(255.0**2 + 127.5**2)
    assert colorfulness(image) == pytest.approx(expected, abs=1e-9)


def test_colorfulness_of_half_red_half_blue_by_hand() -> None:
    image = np.zeros((4, 8, 3), dtype=np.uint8)
    image[:, :4, 0] = 255
    image[:, 4:, 2] = 255
    # Signed (the paper's formula): rg takes 255 and 0: mean 127.5, std 127.5;
    # yb takes 127.5 and -255: mean -63.75, std 191.25.
    signed = math.sqrt(127.5**2 + 191.25**2) + 0.3 * math.sqrt(127.5**2 + 63.75**2)
    assert colorfulness(image, absolute=False) == pytest.approx(signed, abs=1e-9)
    # Absolute (the project's protocol): |yb| takes 127.5 and 255: mean 191.25, std 63.75.
    absolute = math.sqrt(127.5**2 + 63.75**2) + 0.3 * math.sqrt(127.5**2 + 191.25**2)
    assert colorfulness(image) == pytest.approx(absolute, abs=1e-9)


def test_colorfulness_of_gray_image_is_0() -> None:
    gray = np.random.default_rng(7).integers(0, 256, (16, 16), dtype=np.uint8)
    assert colorfulness(np.repeat(gray[..., None], 3, axis=-1)) == 0.0
    assert colorfulness(gray) == 0.0


def test_metrics_return_python_floats() -> None:
    a = _structured_image(16, 16)
    b = _noisy(a, 10, seed=8)
    for value in (psnr(a, b), psnr(a, a), ssim(a, b), colorfulness(a)):
        assert type(value) is float


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_shape_mismatch_raises_value_error_naming_both_shapes(
    metric: Callable[[np.ndarray, np.ndarray], float],
) -> None:
    a = np.zeros((16, 16, 3), dtype=np.uint8)
    b = np.zeros((16, 17, 3), dtype=np.uint8)
    with pytest.raises(ValueError) as info:
        metric(a, b)
    assert str(a.shape) in str(info.value) and str(b.shape) in str(info.value)


@pytest.mark.parametrize("shape", [(16, 16, 4), (16,), (2, 16, 16, 3)])
def test_unsupported_array_shape_raises_value_error(shape: tuple[int, ...]) -> None:
    a = np.zeros(shape, dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, a)
    with pytest.raises(ValueError, match="shape"):
        colorfulness(a)


def test_non_image_input_raises_type_error() -> None:
    with pytest.raises(TypeError, match="pred"):
        psnr([[0, 1]], np.zeros((1, 2)))  # type: ignore[arg-type]


def test_pil_images_are_accepted_like_arrays() -> None:
    a = _structured_image(32, 40)
    b = _noisy(a, 20, seed=9)
    pil_a = Image.fromarray(a)
    pil_b = Image.fromarray(b)
    assert psnr(pil_a, pil_b) == psnr(a, b)
    assert ssim(pil_a, b) == ssim(a, b)
    assert colorfulness(pil_a) == colorfulness(a)
    gray = np.asarray(pil_a.convert("L"))
    assert psnr(pil_a.convert("L"), gray) == float("inf")
    assert colorfulness(pil_a.convert("L")) == 0.0


# ------------------------------------------------------------------------------------- chroma recall
GREEN = (40, 150, 50)  # CIELAB a* about -50
BLUE = (60, 110, 220)  # CIELAB b* about -55
BROWN = (150, 100, 50)  # a* > 0 and b* > 0: the sepia wash


def _scene() -> np.ndarray:
    """Top third sky blue, middle third gray, bottom third vegetation green."""
    image = np.full((30, 20, 3), 128, dtype=np.uint8)
    image[:10] = BLUE
    image[20:] = GREEN
    return image


@pytest.mark.parametrize("hue", ["green", "blue"])
def test_chroma_recall_is_one_for_the_truth_and_zero_for_gray(hue: str) -> None:
    scene = _scene()
    assert chroma_recall(scene, scene, hue) == pytest.approx(1.0, abs=1e-9)
    gray = np.asarray(Image.fromarray(scene).convert("L"))
    assert chroma_recall(np.repeat(gray[..., None], 3, axis=-1), scene, hue) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(chroma_recall(gray, gray, hue))  # (H, W) arrays are gray: no pixel of any hue


def test_chroma_recall_is_negative_for_brown_vegetation_and_partial_for_a_faded_green() -> None:
    scene = _scene()
    sepia = scene.copy()
    sepia[20:] = BROWN
    assert chroma_recall(sepia, scene, "green") < 0
    assert chroma_recall(sepia, scene, "blue") == pytest.approx(1.0, abs=1e-9)  # the sky is untouched
    faded = scene.copy()
    faded[20:] = (85, 130, 90)  # the same green, halfway to gray
    assert 0.2 < chroma_recall(faded, scene, "green") < 0.8


def test_chroma_recall_counts_only_pixels_of_the_hue_and_is_nan_without_them() -> None:
    scene = _scene()
    other = scene.copy()
    other[10:20] = (200, 40, 40)  # red where the target is gray changes nothing
    assert chroma_recall(other, scene, "green") == pytest.approx(1.0, abs=1e-9)
    no_green = scene.copy()
    no_green[20:] = 128
    assert math.isnan(chroma_recall(scene, no_green, "green"))
    # A faint green (a* about -5) is under the default threshold of 10 CIELAB units.
    faint = np.full((8, 8, 3), (120, 130, 120), dtype=np.uint8)
    assert math.isnan(chroma_recall(faint, faint, "green"))
    assert chroma_recall(faint, faint, "green", threshold=2.0) == pytest.approx(1.0, abs=1e-9)


def test_chroma_recall_sums_pool_pixels_across_images() -> None:
    big = np.full((10, 10, 3), GREEN, dtype=np.uint8)  # 100 green pixels, restored in full
    small = np.full((2, 2, 3), GREEN, dtype=np.uint8)  # 4 green pixels, left gray
    got_big, want_big = chroma_recall_sums(big, big)["green"]
    got_small, want_small = chroma_recall_sums(np.full_like(small, 128), small)["green"]
    assert got_small == pytest.approx(0.0, abs=1e-4)
    assert (got_big + got_small) / (want_big + want_small) == pytest.approx(100 / 104, rel=1e-6)


def test_chroma_recall_rejects_bad_arguments() -> None:
    scene = _scene()
    with pytest.raises(ValueError, match="hue"):
        chroma_recall(scene, scene, "purple")
    with pytest.raises(ValueError, match="threshold"):
        chroma_recall(scene, scene, threshold=0)
    with pytest.raises(ValueError, match="same shape"):
        chroma_recall(scene[:10], scene)
