"""Tests for agincolor.color: reference values, properties, gradients, errors."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from skimage.color import lab2rgb as sk_lab2rgb
from skimage.color import rgb2lab as sk_rgb2lab

from agincolor.color import (
    ab_bin_centers,
    lab_l_from_srgb,
    lab_to_rgb,
    linear_to_srgb,
    rgb_to_gray,
    rgb_to_lab,
    srgb_to_linear,
)

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)


def _pixel(r: float, g: float, b: float) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.float64).view(3, 1, 1)


def _to_chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def _to_hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).detach().numpy()


@st.composite
def _rgb_images(draw: st.DrawFn) -> np.ndarray:
    """float64 arrays of shape (*, 3, H, W) with 0-2 leading dims, values in [0, 1]."""
    leading = draw(st.lists(st.integers(1, 2), max_size=2))
    height = draw(st.integers(1, 4))
    width = draw(st.integers(1, 4))
    shape = (*leading, 3, height, width)
    return draw(hnp.arrays(np.float64, shape, elements=st.floats(0.0, 1.0)))


# Published CIELAB (D65, 2 degree observer) values of the sRGB primaries and
# white, e.g. from Bruce Lindbloom's colour calculator and the CIELAB article
# on Wikipedia.
@pytest.mark.parametrize(
    ("rgb", "lab"),
    [
        ((1.0, 0.0, 0.0), (53.24, 80.09, 67.20)),
        ((0.0, 1.0, 0.0), (87.73, -86.18, 83.18)),
        ((0.0, 0.0, 1.0), (32.30, 79.19, -107.86)),
    ],
)
def test_rgb_to_lab_matches_published_primaries_within_0_01(
    rgb: tuple[float, float, float], lab: tuple[float, float, float]
) -> None:
    result = rgb_to_lab(_pixel(*rgb)).flatten()
    torch.testing.assert_close(result, torch.tensor(lab, dtype=torch.float64), rtol=0, atol=0.01)


def test_rgb_to_lab_maps_white_to_100_0_0_within_1e3() -> None:
    result = rgb_to_lab(_pixel(1.0, 1.0, 1.0)).flatten()
    torch.testing.assert_close(
        result, torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64), rtol=0, atol=1e-3
    )


def test_rgb_to_lab_maps_black_to_zero() -> None:
    result = rgb_to_lab(_pixel(0.0, 0.0, 0.0)).flatten()
    torch.testing.assert_close(result, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-9)


def test_rgb_to_lab_agrees_with_skimage_rgb2lab_within_matrix_rounding() -> None:
    # skimage rounds the sRGB->XYZ matrix to 6 digits, so its rows no longer
    # sum to its own D65 white: skimage maps white to b = +0.0047. Agreement is
    # therefore bounded by about 5e-3 in a and b, and by 1.3e-3 in L (blue).
    rng = np.random.default_rng(0)
    image = np.concatenate([rng.random((32, 32, 3)), rng.integers(0, 2, (8, 32, 3))], axis=0)
    ours = _to_hwc(rgb_to_lab(_to_chw(image)))
    np.testing.assert_allclose(ours, sk_rgb2lab(image), rtol=0, atol=6e-3)


def test_rgb_to_lab_is_inverted_by_skimage_lab2rgb_within_1e4() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((32, 32, 3))
    lab = _to_hwc(rgb_to_lab(_to_chw(image)))
    np.testing.assert_allclose(sk_lab2rgb(lab), image, rtol=0, atol=1e-4)


def test_lab_to_rgb_agrees_with_skimage_lab2rgb_within_1e3() -> None:
    rng = np.random.default_rng(2)
    lab = sk_rgb2lab(rng.random((32, 32, 3)))
    ours = _to_hwc(lab_to_rgb(_to_chw(lab)))
    np.testing.assert_allclose(ours, sk_lab2rgb(lab), rtol=0, atol=1e-3)


@PROPERTY_SETTINGS
@given(_rgb_images())
def test_lab_round_trip_error_below_1e4(image: np.ndarray) -> None:
    rgb = torch.from_numpy(image)
    restored = lab_to_rgb(rgb_to_lab(rgb))
    assert restored.shape == rgb.shape
    assert (restored - rgb).abs().max().item() < 1e-4


@PROPERTY_SETTINGS
@given(_rgb_images())
def test_srgb_linear_round_trip_error_below_1e10(image: np.ndarray) -> None:
    rgb = torch.from_numpy(image)
    assert (linear_to_srgb(srgb_to_linear(rgb)) - rgb).abs().max().item() < 1e-10


@PROPERTY_SETTINGS
@given(_rgb_images())
def test_lab_l_from_srgb_equals_l_channel_of_rgb_to_lab(image: np.ndarray) -> None:
    rgb = torch.from_numpy(image)
    lightness = lab_l_from_srgb(rgb)
    assert lightness.shape == (*rgb.shape[:-3], 1, *rgb.shape[-2:])
    torch.testing.assert_close(lightness, rgb_to_lab(rgb)[..., :1, :, :], rtol=0, atol=1e-10)


@PROPERTY_SETTINGS
@given(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 16), st.integers(1, 16), st.just(3)),
        elements=st.integers(0, 255),
    )
)
def test_rgb_to_gray_within_one_level_of_pil_convert_l(image: np.ndarray) -> None:
    expected = np.asarray(Image.fromarray(image).convert("L")).astype(np.int64)
    rgb = _to_chw(image).to(torch.float32) / 255.0
    gray = rgb_to_gray(rgb)
    assert gray.shape == (1, *image.shape[:2])
    levels = torch.round(gray[0] * 255.0).to(torch.int64).numpy()
    assert np.abs(levels - expected).max() <= 1


def test_rgb_to_gray_uses_rec601_weights() -> None:
    gray = rgb_to_gray(torch.eye(3, dtype=torch.float64).view(3, 3, 1, 1))
    torch.testing.assert_close(
        gray.flatten(), torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_conversions_preserve_input_dtype(dtype: torch.dtype) -> None:
    rgb = torch.rand(2, 3, 4, 5).to(dtype)
    assert rgb_to_lab(rgb).dtype == dtype
    assert lab_to_rgb(rgb_to_lab(rgb)).dtype == dtype
    assert rgb_to_gray(rgb).dtype == dtype
    assert lab_l_from_srgb(rgb).dtype == dtype
    assert srgb_to_linear(rgb).dtype == dtype
    assert linear_to_srgb(rgb).dtype == dtype


def test_lab_to_rgb_clip_controls_out_of_gamut_values() -> None:
    # Saturated green at this lightness lies outside the sRGB gamut.
    lab = torch.tensor([50.0, -128.0, 127.0], dtype=torch.float64).view(3, 1, 1)
    unclipped = lab_to_rgb(lab, clip=False)
    assert unclipped.min() < 0.0
    clipped = lab_to_rgb(lab)
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0


# Both ranges stay clear of the piecewise kinks (sRGB 0.04045, CIE f at
# (6/29)^3) and of the clamps, where finite differences are not meaningful;
# the first exercises the power branches, the second the linear ones.
@pytest.mark.parametrize(("low", "high"), [(0.2, 0.9), (0.005, 0.03)])
def test_rgb_to_lab_passes_gradcheck(low: float, high: float) -> None:
    torch.manual_seed(0)
    rgb = (low + (high - low) * torch.rand(2, 3, 3, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(rgb_to_lab, (rgb,))


@pytest.mark.parametrize(("low", "high"), [(0.2, 0.9), (0.005, 0.03)])
def test_lab_to_rgb_passes_gradcheck(low: float, high: float) -> None:
    torch.manual_seed(0)
    rgb = low + (high - low) * torch.rand(2, 3, 3, 3, dtype=torch.float64)
    lab = rgb_to_lab(rgb).detach().requires_grad_()
    assert torch.autograd.gradcheck(lab_to_rgb, (lab,))


def test_lab_l_from_srgb_passes_gradcheck() -> None:
    torch.manual_seed(0)
    rgb = (0.2 + 0.7 * torch.rand(1, 3, 3, 3, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lab_l_from_srgb, (rgb,))


def test_gradients_are_finite_at_black_and_white() -> None:
    rgb = torch.cat([torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)]).double().requires_grad_()
    (rgb_to_lab(rgb).sum() + lab_l_from_srgb(rgb).sum()).backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all()
    lab = rgb_to_lab(rgb.detach()).requires_grad_()
    lab_to_rgb(lab, clip=False).sum().backward()
    assert lab.grad is not None and torch.isfinite(lab.grad).all()


ALL_FUNCTIONS: list[tuple[Callable[[torch.Tensor], torch.Tensor], str]] = [
    (rgb_to_lab, "image"),
    (lab_to_rgb, "lab"),
    (rgb_to_gray, "image"),
    (lab_l_from_srgb, "image"),
    (srgb_to_linear, "image"),
    (linear_to_srgb, "image"),
]


@pytest.mark.parametrize(("function", "name"), ALL_FUNCTIONS)
def test_non_tensor_input_raises_type_error_naming_argument(
    function: Callable[[torch.Tensor], torch.Tensor], name: str
) -> None:
    with pytest.raises(TypeError, match=name):
        function(np.zeros((3, 2, 2)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("function", "name"), ALL_FUNCTIONS)
def test_integer_dtype_raises_type_error(
    function: Callable[[torch.Tensor], torch.Tensor], name: str
) -> None:
    with pytest.raises(TypeError, match="floating"):
        function(torch.zeros(3, 2, 2, dtype=torch.uint8))


@pytest.mark.parametrize(("function", "name"), ALL_FUNCTIONS)
@pytest.mark.parametrize("shape", [(1, 4, 2, 2), (2, 2, 2), (3, 2), (3,)])
def test_wrong_shape_raises_value_error_with_received_shape(
    function: Callable[[torch.Tensor], torch.Tensor], name: str, shape: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match=name) as info:
        function(torch.zeros(shape))
    assert str(shape) in str(info.value)


# --------------------------------------------------------------------------------- quantised chroma
def test_every_ab_bin_centre_falls_in_its_own_bin() -> None:
    from agincolor.color import ab_bin_centers, ab_bin_count, ab_bin_index

    bins = ab_bin_count()
    centers = ab_bin_centers()
    assert bins == 22 and centers.shape == (bins * bins, 2)
    assert float(centers.min()) == -105.0 and float(centers.max()) == 105.0
    ab = centers.T.reshape(2, 1, bins * bins)  # (2, H=1, W=Q)
    assert torch.equal(ab_bin_index(ab).flatten(), torch.arange(bins * bins))


def test_ab_bin_index_puts_values_outside_the_grid_in_its_border_bins() -> None:
    from agincolor.color import ab_bin_index

    ab = torch.tensor([[[-500.0, 500.0]], [[500.0, -500.0]]])  # (2, 1, 2): (a, b) = (-500, 500), (500, -500)
    assert ab_bin_index(ab).tolist() == [[0 * 22 + 21, 21 * 22 + 0]]


def test_ab_grid_must_have_a_whole_number_of_bins() -> None:
    from agincolor.color import ab_bin_count

    with pytest.raises(ValueError, match="whole number"):
        ab_bin_count(bin_size=7.0, limit=110.0)
    with pytest.raises(ValueError, match="> 0"):
        ab_bin_count(bin_size=0.0)


def test_annealed_mean_moves_from_the_mean_to_the_mode_as_the_temperature_falls() -> None:
    from agincolor.color import ab_from_bin_logits

    centers = torch.tensor([[0.0, 0.0], [40.0, -20.0], [-60.0, 60.0]])
    logits = torch.tensor([2.0, 1.0, -30.0]).view(1, 3, 1, 1)
    mean = ab_from_bin_logits(logits, centers, temperature=1.0)[0, :, 0, 0]
    p = torch.softmax(torch.tensor([2.0, 1.0, -30.0]), 0)
    assert torch.allclose(mean, p @ centers, atol=1e-5)
    cold = ab_from_bin_logits(logits, centers, temperature=0.05)[0, :, 0, 0]
    assert torch.allclose(cold, centers[0], atol=1e-3)  # the mode
    assert ab_from_bin_logits(logits, centers, 0.38)[0, 0, 0, 0].abs() < mean[0].abs()  # between them
    with pytest.raises(ValueError, match="temperature"):
        ab_from_bin_logits(logits, centers, temperature=0.0)
    with pytest.raises(ValueError, match="3 bins"):
        ab_from_bin_logits(torch.zeros(1, 4, 1, 1), centers)


def _srgb_mean_by_every_bin(logits: torch.Tensor, centers: torch.Tensor, lightness: torch.Tensor, t: float) -> torch.Tensor:
    """The sRGB-mean decoding done the slow way: every bin converted at every pixel's own lightness."""
    n, q, h, w = logits.shape
    lab = torch.cat([lightness[:, None].expand(n, q, 1, h, w), centers[None, :, :, None, None].expand(n, q, 2, h, w)], 2)
    rgb = lab_to_rgb(lab.double()).float()  # (N, Q, 3, H, W), clipped to the gamut
    mean = (torch.softmax(logits / t, 1)[:, :, None] * rgb).sum(1)
    return rgb_to_lab(mean)[:, 1:]


def test_srgb_mean_decoding_averages_the_bins_colours_not_their_ab() -> None:
    from agincolor.color import ab_from_bin_logits, ab_from_bin_logits_srgb_mean

    centers = ab_bin_centers()
    blue = int((centers - torch.tensor([0.0, -25.0])).norm(dim=1).argmin())
    orange = int((centers - torch.tensor([20.0, 35.0])).norm(dim=1).argmin())
    logits = torch.full((1, 484, 1, 3), -1e4)
    logits[0, blue, 0, 0] = 0.0  # all on one bin
    logits[0, [blue, orange], 0, 1:] = 0.0  # half on each of two opposite hues
    lightness = torch.tensor([50.0, 50.0, 53.7]).view(1, 1, 1, 3)  # on a tabulated level, and between two
    ab = ab_from_bin_logits_srgb_mean(logits, centers, lightness, 1.0)
    assert torch.allclose(ab[0, :, 0, 0], centers[blue], atol=0.05)  # one bin: its own chroma
    exact = _srgb_mean_by_every_bin(logits, centers, lightness, 1.0)
    assert torch.allclose(ab[0, :, 0, 1], exact[0, :, 0, 1], atol=0.05)
    assert torch.allclose(ab[0, :, 0, 2], exact[0, :, 0, 2], atol=0.5)
    # ... which is not the mean of their ab.
    assert (ab[0, :, 0, 1] - ab_from_bin_logits(logits, centers, 1.0)[0, :, 0, 1]).abs().max() > 1.0


def test_srgb_mean_decoding_is_within_one_and_a_half_ab_units_of_converting_every_bin() -> None:
    from agincolor.color import ab_from_bin_logits_srgb_mean

    torch.manual_seed(0)
    centers = ab_bin_centers()
    logits = torch.randn(2, 484, 6, 7) * 4  # broad and peaked distributions over every hue
    lightness = torch.rand(2, 1, 6, 7) * 100
    for t in (0.4, 1.0):
        got = ab_from_bin_logits_srgb_mean(logits, centers, lightness, t)
        assert got.shape == (2, 2, 6, 7)
        error = (got - _srgb_mean_by_every_bin(logits, centers, lightness, t)).abs()
        assert error.max() < 1.5 and error.mean() < 0.1  # a just-noticeable difference is about 2.3


def test_srgb_mean_decoding_is_differentiable_and_leaves_its_input_alone() -> None:
    from agincolor.color import ab_from_bin_logits_srgb_mean

    torch.manual_seed(0)
    centers = ab_bin_centers()
    logits = (torch.randn(1, 484, 3, 4) * 2).requires_grad_(True)
    lightness = torch.full((1, 1, 3, 4), 60.0)
    ab = ab_from_bin_logits_srgb_mean(logits, centers, lightness, 0.8)
    (ab * torch.tensor([1.0, -0.5]).view(1, 2, 1, 1)).sum().backward()
    # At a tabulated lightness (60) the table is exact, so the gradient is the slow way's.
    reference = logits.detach().clone().requires_grad_(True)
    (_srgb_mean_by_every_bin(reference, centers, lightness, 0.8) * torch.tensor([1.0, -0.5]).view(1, 2, 1, 1)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().max() > 1e-3
    torch.testing.assert_close(logits.grad, reference.grad, atol=2e-4, rtol=1e-2)
    plain = logits.detach().clone()
    with torch.no_grad():
        again = ab_from_bin_logits_srgb_mean(plain, centers, lightness, 0.8)
    torch.testing.assert_close(plain, logits.detach())  # the in-place path works on its own copy
    torch.testing.assert_close(again, ab.detach())


def test_srgb_mean_decoding_refuses_mismatched_shapes_and_bad_settings() -> None:
    from agincolor.color import ab_from_bin_logits_srgb_mean

    centers = ab_bin_centers()
    logits = torch.zeros(1, 484, 4, 5)
    with pytest.raises(ValueError, match=r"lightness of shape \(1, 1, 4, 5\)"):
        ab_from_bin_logits_srgb_mean(logits, centers, torch.zeros(1, 1, 5, 4))
    with pytest.raises(ValueError, match="484 bins"):
        ab_from_bin_logits_srgb_mean(logits[:, :100], centers, torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="temperature"):
        ab_from_bin_logits_srgb_mean(logits, centers, torch.zeros(1, 1, 4, 5), temperature=0.0)
    with pytest.raises(ValueError, match="levels"):
        ab_from_bin_logits_srgb_mean(logits, centers, torch.zeros(1, 1, 4, 5), levels=1)
    with pytest.raises(ValueError, match=r"table of shape \(63, 484\)"):
        ab_from_bin_logits_srgb_mean(logits, centers, torch.zeros(1, 1, 4, 5), table=torch.zeros(60, 484))


def test_srgb_mean_decoding_with_a_kept_table_gives_the_same_colours() -> None:
    from agincolor.color import ab_from_bin_logits_srgb_mean, bin_srgb_table

    torch.manual_seed(3)
    centers = ab_bin_centers()
    logits = torch.randn(2, 484, 6, 7) * 3
    lightness = torch.rand(2, 1, 6, 7) * 100
    for levels in (21, 5):
        table = bin_srgb_table(centers, levels)
        assert table.shape == (3 * levels, 484)
        assert table.min() >= 0 and table.max() <= 1  # clipped to the gamut
        kept = ab_from_bin_logits_srgb_mean(logits, centers, lightness, 0.8, levels=levels, table=table)
        fresh = ab_from_bin_logits_srgb_mean(logits, centers, lightness, 0.8, levels=levels)
        assert torch.equal(kept, fresh)
    # The table depends on the levels: one made for other levels would give other colours.
    coarse = ab_from_bin_logits_srgb_mean(logits, centers, lightness, 0.8, levels=5)
    assert not torch.allclose(coarse, ab_from_bin_logits_srgb_mean(logits, centers, lightness, 0.8))
