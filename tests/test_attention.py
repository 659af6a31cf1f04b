"""Tests for agincolor.attention: CAMAttention shapes, logits, pooling and input checks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agincolor import CAMAttention, CAMOutput

PROPERTY_SETTINGS = settings(max_examples=20, deadline=None)
POOLINGS = [("avg", "median"), ("avg", "max"), ("median",)]


@pytest.mark.parametrize("pooling", POOLINGS)
def test_cam_output_shapes_for_each_pooling(pooling: tuple[str, ...]) -> None:
    cam = CAMAttention(16, pooling=pooling)
    out = cam(torch.randn(3, 16, 9, 7))
    assert isinstance(out, CAMOutput)
    assert out.features.shape == (3, 16, 9, 7)
    assert out.logits.shape == (3, len(pooling))
    assert out.heatmap.shape == (3, 1, 9, 7)


def test_cam_default_pooling_is_average_and_median() -> None:
    assert CAMAttention(8).pooling == ("avg", "median")


def test_cam_accepts_a_single_pooling_name_as_a_string() -> None:
    assert CAMAttention(8, pooling="max").pooling == ("max",)


def _manual_pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    if kind == "avg":
        return flat.mean(dim=2)
    if kind == "max":
        return flat.max(dim=2).values
    # torch.median returns the lower of the two middle values for an even count.
    return torch.median(flat, dim=2).values


@PROPERTY_SETTINGS
@given(
    st.sampled_from(POOLINGS),
    st.integers(1, 3),
    st.integers(1, 9),
    st.integers(1, 9),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_cam_logits_equal_the_linear_classifier_on_the_pooled_features(
    pooling: tuple[str, ...], n: int, h: int, w: int, spectral: bool, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    cam = CAMAttention(8, pooling=pooling, spectral_norm=spectral).eval()
    x = torch.randn(n, 8, h, w, generator=gen, dtype=torch.float64).float()
    logits = cam(x).logits
    for i, kind in enumerate(pooling):
        weight = cam.classifiers[i].weight.detach()  # (1, C), spectrally normalized when wrapped
        expected = _manual_pool(x, kind) @ weight.T
        torch.testing.assert_close(logits[:, i : i + 1], expected)


def test_cam_median_pooling_matches_torch_median_numerically() -> None:
    # Each channel holds a known permutation of 0..H*W-1: the lower median of 0..15 is 7.
    n, c, h, w = 2, 4, 4, 4
    gen = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randperm(h * w, generator=gen).float() for _ in range(n * c)]).view(n, c, h, w)
    cam = CAMAttention(c, pooling=("median",))
    with torch.no_grad():
        cam.classifiers[0].weight.fill_(1.0)
    logits = cam(x).logits
    assert torch.median(x.flatten(2), dim=2).values.eq(7.0).all()
    torch.testing.assert_close(logits, torch.full((n, 1), 7.0 * c))


def test_cam_features_are_the_fused_channel_weighted_maps() -> None:
    cam = CAMAttention(6, pooling=("avg", "max")).eval()
    x = torch.randn(2, 6, 5, 5)
    maps = [x * fc.weight.view(1, 6, 1, 1) for fc in cam.classifiers]
    expected = torch.relu(cam.fuse(torch.cat(maps, dim=1)))
    out = cam(x)
    torch.testing.assert_close(out.features, expected)
    torch.testing.assert_close(out.heatmap, expected.sum(dim=1, keepdim=True))


def test_cam_discriminator_flavour_uses_leaky_relu() -> None:
    cam = CAMAttention(4, activation="leaky_relu", spectral_norm=True).eval()
    out = cam(torch.randn(1, 4, 6, 6) * 10)
    assert (out.features < 0).any()


def test_cam_gradients_reach_input_and_classifiers() -> None:
    cam = CAMAttention(8)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    out = cam(x)
    (out.features.square().mean() + out.logits.sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for fc in cam.classifiers:
        assert fc.weight.grad is not None and fc.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("pooling", "pattern"),
    [(("avg", "mean"), "pooling"), (("gem",), "pooling"), ((), "pooling"), (("avg", "avg"), "pooling")],
    ids=["unknown", "unknown-only", "empty", "duplicate"],
)
def test_cam_rejects_bad_pooling_with_value_error_naming_pooling(pooling: tuple[str, ...], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        CAMAttention(8, pooling=pooling)


@pytest.mark.parametrize("channels", [0, -3, 2.5])
def test_cam_rejects_non_positive_channels(channels: object) -> None:
    with pytest.raises(ValueError, match="channels"):
        CAMAttention(channels)  # type: ignore[arg-type]


def test_cam_rejects_unknown_activation() -> None:
    with pytest.raises(ValueError, match="activation"):
        CAMAttention(8, activation="gelu")


def test_cam_rejects_wrong_channel_count_and_rank() -> None:
    cam = CAMAttention(8)
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        cam(torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        cam(torch.randn(8, 5, 5))
    with pytest.raises(TypeError):
        cam([[0.0]])  # type: ignore[arg-type]


def test_cam_repr_names_channels_and_pooling() -> None:
    text = repr(CAMAttention(8, pooling=("avg", "max")))
    assert "channels=8" in text and "'max'" in text
