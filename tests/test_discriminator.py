"""Tests for agincolor.discriminator: measured receptive fields, outputs, width cap and argument checks."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from agincolor import Discriminator, DiscriminatorOutput

# Widths do not change a receptive field; a narrow model keeps the large-input measurement fast.
NARROW = {"base_channels": 4, "max_channels": 16}
TINY = {"base_channels": 8, "max_channels": 32}


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _measured_receptive_field(model: Discriminator, scale: int, size: int) -> tuple[int, int, int]:
    """Backpropagate one central patch logit to a zero input; return (height, width, margin) of the
    bounding box of the non-zero input gradient, margin being its distance to the nearest image border."""
    x = torch.zeros(1, model.in_channels, size, size, requires_grad=True)
    logits = model(x)[scale].patch_logits
    h, w = logits.shape[-2:]
    logits[0, 0, h // 2, w // 2].backward()
    assert x.grad is not None
    touched = x.grad.abs().sum(dim=(0, 1)).ne(0).nonzero()
    top, left = touched.min(dim=0).values.tolist()
    bottom, right = touched.max(dim=0).values.tolist()
    height, width = bottom - top + 1, right - left + 1
    # Every pixel inside the box reaches the logit: the field is a full square, not a sparse pattern.
    assert len(touched) == height * width
    margin = min(top, left, size - 1 - bottom, size - 1 - right)
    return height, width, margin


@pytest.mark.parametrize(("scale", "expected"), [(0, 70), (1, 286)], ids=["local", "global"])
def test_discriminator_receptive_fields_measured_from_gradients_are_70_and_286(scale: int, expected: int) -> None:
    torch.manual_seed(0)
    model = Discriminator(in_channels=1, **NARROW).eval()
    height, width, margin = _measured_receptive_field(model, scale, size=384)
    # Away from the border, reflection padding cannot fold gradient back into the measured box.
    assert margin >= 8
    assert (height, width) == (expected, expected)


@pytest.mark.parametrize(("layers", "expected"), [(3, 16), (4, 34), (6, 142)])
def test_discriminator_receptive_field_follows_the_layer_count(layers: int, expected: int) -> None:
    torch.manual_seed(0)
    model = Discriminator(in_channels=1, local_layers=layers, global_layers=layers, **NARROW).eval()
    height, width, margin = _measured_receptive_field(model, 0, size=224)
    assert margin >= 8
    assert (height, width) == (expected, expected)


def test_discriminator_returns_local_and_global_outputs_with_patch_and_cam_logits() -> None:
    torch.manual_seed(0)
    model = Discriminator(**TINY)
    out = model(torch.rand(2, 3, 96, 128) * 2 - 1)
    assert isinstance(out, tuple) and len(out) == 2
    local, global_ = out
    for scale in (local, global_):
        assert isinstance(scale, DiscriminatorOutput)
        assert scale.patch_logits.dim() == 4 and scale.patch_logits.shape[:2] == (2, 1)
        assert scale.cam_logits.shape == (2, 2)
        assert scale.heatmap.shape[:2] == (2, 1)
        assert torch.isfinite(scale.patch_logits).all()
    # 3 stride-2 convs for the local scale and 5 for the global one, then two 4x4 stride-1 convs.
    assert local.patch_logits.shape[-2:] == (10, 14)
    assert global_.patch_logits.shape[-2:] == (1, 2)


def test_discriminator_cam_logits_have_one_column_per_pooling() -> None:
    model = Discriminator(pooling=("median",), local_layers=3, global_layers=4, **TINY)
    local, global_ = model(torch.zeros(1, 3, 32, 32))
    assert local.cam_logits.shape == (1, 1) and global_.cam_logits.shape == (1, 1)


def test_discriminator_gradients_reach_the_input_through_both_scales() -> None:
    model = Discriminator(**TINY)
    x = torch.rand(1, 3, 96, 96, requires_grad=True)
    local, global_ = model(x)
    for scale in (local, global_):
        x.grad = None
        (scale.patch_logits.square().mean() + scale.cam_logits.sum()).backward(retain_graph=True)
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_discriminator_uses_spectral_norm_on_every_conv_and_linear() -> None:
    model = Discriminator(**TINY)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers
    for m in layers:
        assert hasattr(m, "parametrizations") and "weight" in m.parametrizations


def test_discriminator_max_channels_caps_every_width_and_shrinks_the_model() -> None:
    capped = Discriminator(base_channels=8, max_channels=16)
    uncapped = Discriminator(base_channels=8)
    for m in capped.modules():
        if isinstance(m, nn.Conv2d):
            assert m.out_channels <= 16
    widest = max(m.out_channels for m in uncapped.modules() if isinstance(m, nn.Conv2d))
    assert widest == 8 * 2**5
    assert _param_count(capped) < _param_count(uncapped)
    assert _param_count(capped.global_) < _param_count(uncapped.global_)


def test_discriminator_default_global_scale_has_about_53m_parameters() -> None:
    start = time.perf_counter()
    model = Discriminator()
    if time.perf_counter() - start > 5.0:
        pytest.skip("default discriminator took more than 5 s to build on this machine")
    assert 50_000_000 <= _param_count(model.global_) <= 56_000_000
    assert _param_count(model.local) < _param_count(model.global_) / 10


# --- constructor errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"in_channels": 0}, "in_channels"),
        ({"in_channels": 3.0}, "in_channels"),
        ({"base_channels": -8}, "base_channels"),
        ({"local_layers": 0}, "local_layers"),
        ({"local_layers": 2}, "local_layers"),
        ({"global_layers": 2}, "global_layers"),
        ({"global_layers": True}, "global_layers"),
        ({"max_channels": 0}, "max_channels"),
        ({"pooling": ("avg", "mean")}, "pooling"),
        ({"pooling": ()}, "pooling"),
    ],
)
def test_discriminator_constructor_rejects_bad_arguments_naming_them(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        Discriminator(**{**TINY, **kwargs})


# --- forward errors ----------------------------------------------------------------------------------


def test_discriminator_rejects_a_non_tensor_with_type_error() -> None:
    with pytest.raises(TypeError, match="torch.Tensor"):
        Discriminator(**TINY)([[0.0]])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ((1, 1, 96, 96), r"\(N, 3, H, W\)"),
        ((3, 96, 96), r"\(N, 3, H, W\)"),
        ((1, 3, 31, 96), "at least"),
        ((1, 3, 96, 16), "at least"),
    ],
)
def test_discriminator_rejects_bad_input_shapes_with_clear_value_error(shape: tuple[int, ...], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        Discriminator(**TINY)(torch.zeros(shape))


def test_default_discriminator_rejects_inputs_below_its_minimum_and_runs_at_it() -> None:
    model = Discriminator()
    assert model.min_size == 96
    with pytest.raises(ValueError, match="at least 96"):
        model(torch.zeros(1, 3, 95, 120))
    local, global_ = model(torch.zeros(1, 3, 96, 96))
    assert global_.patch_logits.shape[:2] == (1, 1)
