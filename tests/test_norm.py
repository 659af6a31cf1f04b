"""Tests for agincolor.norm: AGIN and GroupInstanceNorm against torch's own norms, rho clipping, registry."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from agincolor import AGIN, Generator, GroupInstanceNorm, clip_rho_, get_norm_layer, register_norm_layer
from agincolor.norm import NORM_LAYERS, group_instance_norm

PROPERTY_SETTINGS = settings(max_examples=25, deadline=None)
EPS = 1e-5


@dataclass
class Case:
    """A random (N, C, H, W) activation with per-sample affine terms and a per-channel rho in [0, 1]."""

    x: torch.Tensor
    gamma: torch.Tensor  # (N, C)
    beta: torch.Tensor  # (N, C)
    rho: torch.Tensor  # (C,)
    num_groups: int


@st.composite
def _cases(draw: st.DrawFn, dtype: torch.dtype = torch.float64) -> Case:
    n = draw(st.integers(1, 3))
    num_groups = draw(st.integers(1, 4))
    c = num_groups * draw(st.integers(1, 4))
    h = draw(st.integers(2, 9))
    w = draw(st.integers(2, 9))
    scale = draw(st.floats(0.01, 100.0))
    offset = draw(st.floats(-10.0, 10.0))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    # Per-channel offsets make group and instance statistics differ, so the two norms are told apart.
    channel_offset = torch.randn(n, c, 1, 1, generator=gen, dtype=dtype) * 3
    x = (torch.randn(n, c, h, w, generator=gen, dtype=dtype) + channel_offset) * scale + offset
    gamma = torch.randn(n, c, generator=gen, dtype=dtype) + 1
    beta = torch.randn(n, c, generator=gen, dtype=dtype)
    rho = torch.rand(c, generator=gen, dtype=dtype)
    return Case(x, gamma, beta, rho, num_groups)


def _affine(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return y * gamma[:, :, None, None] + beta[:, :, None, None]


def _reference_gn(x: torch.Tensor, num_groups: int) -> torch.Tensor:
    return F.group_norm(x, num_groups, eps=EPS)


def _reference_in(x: torch.Tensor) -> torch.Tensor:
    return F.instance_norm(x, eps=EPS)


def _agin(case: Case, rho: torch.Tensor | float) -> AGIN:
    c = case.x.shape[1]
    layer = AGIN(c, num_groups=case.num_groups, eps=EPS).to(case.x.dtype)
    with torch.no_grad():
        layer.rho.copy_(torch.as_tensor(rho, dtype=case.x.dtype).expand(c).view(1, c, 1, 1))
    return layer


def _gin(case: Case, rho: torch.Tensor | float) -> GroupInstanceNorm:
    c = case.x.shape[1]
    layer = GroupInstanceNorm(c, num_groups=case.num_groups, eps=EPS).to(case.x.dtype)
    with torch.no_grad():
        layer.rho.copy_(torch.as_tensor(rho, dtype=case.x.dtype).expand(c).view(1, c, 1, 1))
        layer.gamma.copy_(case.gamma[0].view(1, c, 1, 1))
        layer.beta.copy_(case.beta[0].view(1, c, 1, 1))
    return layer


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    # Normalized values are O(1) before the affine; tolerance is relative to the output's scale.
    torch.testing.assert_close(actual, expected, rtol=1e-7, atol=1e-7 * (1 + expected.abs().max().item()))


# --- AGIN and GroupInstanceNorm against torch.nn.functional -----------------------------------------


@PROPERTY_SETTINGS
@given(_cases())
def test_agin_equals_group_norm_then_affine_when_rho_is_one(case: Case) -> None:
    out = _agin(case, 1.0)(case.x, case.gamma, case.beta)
    _close(out, _affine(_reference_gn(case.x, case.num_groups), case.gamma, case.beta))


@PROPERTY_SETTINGS
@given(_cases())
def test_agin_equals_instance_norm_then_affine_when_rho_is_zero(case: Case) -> None:
    out = _agin(case, 0.0)(case.x, case.gamma, case.beta)
    _close(out, _affine(_reference_in(case.x), case.gamma, case.beta))


@PROPERTY_SETTINGS
@given(_cases())
def test_agin_is_the_convex_mix_of_group_and_instance_norm_for_intermediate_rho(case: Case) -> None:
    out = _agin(case, case.rho)(case.x, case.gamma, case.beta)
    r = case.rho.view(1, -1, 1, 1)
    mix = r * _reference_gn(case.x, case.num_groups) + (1 - r) * _reference_in(case.x)
    _close(out, _affine(mix, case.gamma, case.beta))


@PROPERTY_SETTINGS
@given(_cases())
def test_gin_equals_group_norm_with_its_own_affine_when_rho_is_one(case: Case) -> None:
    out = _gin(case, 1.0)(case.x)
    g = case.gamma[:1].expand_as(case.gamma)
    b = case.beta[:1].expand_as(case.beta)
    _close(out, _affine(_reference_gn(case.x, case.num_groups), g, b))


@PROPERTY_SETTINGS
@given(_cases())
def test_gin_equals_instance_norm_with_its_own_affine_when_rho_is_zero(case: Case) -> None:
    out = _gin(case, 0.0)(case.x)
    g = case.gamma[:1].expand_as(case.gamma)
    b = case.beta[:1].expand_as(case.beta)
    _close(out, _affine(_reference_in(case.x), g, b))


@PROPERTY_SETTINGS
@given(_cases())
def test_gin_is_the_convex_mix_of_group_and_instance_norm_for_intermediate_rho(case: Case) -> None:
    out = _gin(case, case.rho)(case.x)
    r = case.rho.view(1, -1, 1, 1)
    mix = r * _reference_gn(case.x, case.num_groups) + (1 - r) * _reference_in(case.x)
    g = case.gamma[:1].expand_as(case.gamma)
    b = case.beta[:1].expand_as(case.beta)
    _close(out, _affine(mix, g, b))


def test_agin_in_float32_matches_float64_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 13, 11, generator=gen) * 5 + 3
    gamma, beta = torch.randn(2, 16, generator=gen), torch.randn(2, 16, generator=gen)
    layer = AGIN(16, num_groups=4)
    with torch.no_grad():
        layer.rho.copy_(torch.rand(1, 16, 1, 1, generator=gen))
    r = layer.rho.detach().double()
    xd = x.double()
    expected = _affine(r * _reference_gn(xd, 4) + (1 - r) * _reference_in(xd), gamma.double(), beta.double())
    torch.testing.assert_close(layer(x, gamma, beta).double(), expected, rtol=1e-4, atol=1e-4)


def test_group_instance_norm_without_affine_is_the_plain_mix() -> None:
    x = torch.randn(2, 8, 6, 5, dtype=torch.float64)
    rho = torch.full((1, 8, 1, 1), 0.3, dtype=torch.float64)
    expected = 0.3 * _reference_gn(x, 2) + 0.7 * _reference_in(x)
    torch.testing.assert_close(group_instance_norm(x, rho, 2, EPS), expected)


@st.composite
def _bf16_cases(draw: st.DrawFn) -> Case:
    """Activations as a conv produces them: channel means within a few standard deviations of zero."""
    n = draw(st.integers(1, 2))
    num_groups = draw(st.integers(1, 4))
    c = num_groups * draw(st.integers(1, 4))
    h, w = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    scale = draw(st.floats(0.01, 100.0))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = (torch.randn(n, c, h, w, generator=gen) + torch.empty(n, c, 1, 1).uniform_(-2, 2, generator=gen)) * scale
    gamma = torch.randn(n, c, generator=gen) + 1
    beta = torch.randn(n, c, generator=gen)
    return Case(x, gamma, beta, torch.rand(c, generator=gen), num_groups)


@PROPERTY_SETTINGS
@given(_bf16_cases())
def test_agin_bfloat16_input_is_close_to_float32(case: Case) -> None:
    layer = _agin(case, case.rho)
    x16, g16, b16 = case.x.bfloat16(), case.gamma.bfloat16(), case.beta.bfloat16()
    out16 = layer(x16, g16, b16)
    assert out16.dtype == torch.bfloat16
    out32 = layer(x16.float(), g16.float(), b16.float())
    # bfloat16 keeps 8 significant bits, so each rounded term carries a relative error of about 0.4 %.
    bound = 0.03 * (1 + out32.abs().max().item())
    torch.testing.assert_close(out16.float(), out32, rtol=0.02, atol=bound)


def test_agin_bfloat16_error_does_not_grow_with_the_channel_mean() -> None:
    gen = torch.Generator().manual_seed(3)
    x16 = (torch.randn(1, 8, 32, 32, generator=gen) + 100.0).bfloat16()
    reference = F.instance_norm(x16.double()).float()
    layer = AGIN(8, num_groups=8, rho_init=0.0)
    out = layer(x16, torch.ones(1, 8, dtype=torch.bfloat16), torch.zeros(1, 8, dtype=torch.bfloat16)).float()
    torch_error = (F.instance_norm(x16).float() - reference).abs().max().item()
    assert (out - reference).abs().max().item() <= 2 * torch_error + 0.02


# --- gradients ---------------------------------------------------------------------------------------


def test_agin_gradients_reach_rho_gamma_beta_and_input() -> None:
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(2, 8, 7, 6, generator=gen) + torch.randn(2, 8, 1, 1, generator=gen) * 2).requires_grad_()
    gamma = (torch.randn(2, 8, generator=gen) + 1).requires_grad_()
    beta = torch.randn(2, 8, generator=gen).requires_grad_()
    layer = AGIN(8, num_groups=2, rho_init=0.5)
    # A random projection of the output: the plain sum of a normalized map carries no gradient to x.
    weight = torch.randn(2, 8, 7, 6, generator=gen)
    (layer(x, gamma, beta) * weight).sum().backward()
    for name, grad in (("rho", layer.rho.grad), ("gamma", gamma.grad), ("beta", beta.grad), ("x", x.grad)):
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_gin_gradients_reach_rho_gamma_beta_and_input() -> None:
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(2, 8, 7, 6, generator=gen) + torch.randn(2, 8, 1, 1, generator=gen) * 2).requires_grad_()
    layer = GroupInstanceNorm(8, num_groups=2, rho_init=0.5)
    weight = torch.randn(2, 8, 7, 6, generator=gen)
    (layer(x) * weight).sum().backward()
    grads = {"rho": layer.rho.grad, "gamma": layer.gamma.grad, "beta": layer.beta.grad, "x": x.grad}
    for name, grad in grads.items():
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_agin_gradient_matches_finite_differences() -> None:
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    rho = torch.rand(1, 4, 1, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: group_instance_norm(a[0], a[1], 2, EPS, a[2], a[3]), (x, rho, gamma, beta))


# --- rho: clipping, buffers, initial values ----------------------------------------------------------


_OUTSIDE = st.one_of(st.floats(-50.0, -1e-3), st.floats(1.0 + 1e-3, 50.0), st.floats(0.0, 1.0))


@PROPERTY_SETTINGS
@given(st.lists(_OUTSIDE, min_size=8, max_size=8), st.booleans())
def test_clip_rho_projects_rho_onto_the_unit_interval(values: list[float], use_gin: bool) -> None:
    layer = GroupInstanceNorm(8, num_groups=4) if use_gin else AGIN(8, num_groups=4)
    raw = torch.tensor(values).view(1, 8, 1, 1)
    with torch.no_grad():
        layer.rho.copy_(raw)
    assert clip_rho_(layer) is layer
    torch.testing.assert_close(layer.rho.detach(), raw.clamp(0.0, 1.0))


@PROPERTY_SETTINGS
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_clip_rho_keeps_every_rho_of_a_generator_in_unit_interval(seed: int, learn_rho: bool) -> None:
    model = Generator(base_channels=8, num_blocks=1, num_groups=4, learn_rho=learn_rho)
    gen = torch.Generator().manual_seed(seed)
    layers = [m for m in model.modules() if isinstance(m, (AGIN, GroupInstanceNorm))]
    # 1 adaptive block (2 AGIN) and 2 upsampling blocks (2 GroupInstanceNorm).
    assert sum(isinstance(m, AGIN) for m in layers) == 2
    assert sum(isinstance(m, GroupInstanceNorm) for m in layers) == 2
    with torch.no_grad():
        for m in layers:
            m.rho.copy_(torch.randn(m.rho.shape, generator=gen) * 5 + 0.5)
    clip_rho_(model)
    for m in layers:
        assert m.rho.min() >= 0.0 and m.rho.max() <= 1.0
        assert (m.rho == 0).any() or (m.rho == 1).any()


def test_clip_rho_after_an_optimizer_step_restores_the_constraint() -> None:
    layer = AGIN(4, num_groups=2, rho_init=0.99)
    optimizer = torch.optim.SGD(layer.parameters(), lr=10.0)
    x = torch.randn(2, 4, 5, 5) + torch.randn(2, 4, 1, 1) * 3
    gamma, beta = torch.ones(2, 4), torch.zeros(2, 4)
    (layer(x, gamma, beta) * torch.randn_like(x)).sum().backward()
    optimizer.step()
    clip_rho_(layer)
    assert layer.rho.min() >= 0.0 and layer.rho.max() <= 1.0


@pytest.mark.parametrize("cls", [AGIN, GroupInstanceNorm])
def test_learn_rho_false_makes_rho_a_buffer_not_a_parameter(cls: type[nn.Module]) -> None:
    fixed = cls(8, num_groups=4, rho_init=0.0, learn_rho=False)
    assert "rho" not in dict(fixed.named_parameters())
    assert "rho" in dict(fixed.named_buffers())
    assert "rho" in fixed.state_dict()
    learned = cls(8, num_groups=4)
    assert "rho" in dict(learned.named_parameters())
    assert "rho" not in dict(learned.named_buffers())


def test_generator_learn_rho_false_leaves_no_rho_parameter() -> None:
    model = Generator(base_channels=8, num_blocks=1, num_groups=4, learn_rho=False)
    assert not [name for name, _ in model.named_parameters() if name.endswith("rho")]
    assert len([name for name, _ in model.named_buffers() if name.endswith("rho")]) == 4


def test_default_rho_init_is_mostly_instance_norm_for_agin_and_group_norm_for_gin() -> None:
    assert torch.all(AGIN(32).rho == 0.1)
    assert torch.all(GroupInstanceNorm(32).rho == 1.0)


# --- construction and input errors -------------------------------------------------------------------


@pytest.mark.parametrize("cls", [AGIN, GroupInstanceNorm])
@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"num_channels": 0}, "num_channels"),
        ({"num_channels": 12, "num_groups": 8}, "num_groups"),
        ({"num_channels": 8, "num_groups": 0}, "num_groups"),
        ({"num_channels": 8, "eps": 0.0}, "eps"),
        ({"num_channels": 8, "rho_init": 1.5}, "rho_init"),
        ({"num_channels": 8, "rho_init": -0.1}, "rho_init"),
    ],
)
def test_norm_constructor_rejects_bad_arguments_naming_them(cls: type[nn.Module], kwargs: dict, argument: str) -> None:
    kwargs = {"num_groups": 4, **kwargs}
    with pytest.raises(ValueError, match=argument):
        cls(**kwargs)


def test_agin_rejects_wrong_input_and_affine_shapes() -> None:
    layer = AGIN(8, num_groups=4)
    x, gamma, beta = torch.randn(2, 8, 4, 4), torch.ones(2, 8), torch.zeros(2, 8)
    with pytest.raises(TypeError):
        layer(x.numpy(), gamma, beta)
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        layer(torch.randn(2, 6, 4, 4), gamma, beta)
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        layer(torch.randn(8, 4, 4), gamma, beta)
    with pytest.raises(ValueError, match="gamma"):
        layer(x, torch.ones(1, 8), beta)
    with pytest.raises(ValueError, match="beta"):
        layer(x, gamma, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="gamma"):
        layer(x, 1.0, beta)
    # (N, C, 1, 1) affine terms are accepted as well.
    torch.testing.assert_close(layer(x, gamma[:, :, None, None], beta[:, :, None, None]), layer(x, gamma, beta))


def test_norm_repr_shows_channels_groups_and_learn_rho() -> None:
    text = repr(GroupInstanceNorm(16, num_groups=8, learn_rho=False))
    assert "16" in text and "num_groups=8" in text and "learn_rho=False" in text


# --- registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("agin", {"num_groups": 4}), ("gin", {"num_groups": 4}), ("in", {}), ("gn", {"num_groups": 4}), ("bn", {})],
)
def test_get_norm_layer_builds_a_shape_preserving_layer_from_the_channel_count(name: str, kwargs: dict) -> None:
    layer = get_norm_layer(name)(8, **kwargs)
    x = torch.randn(2, 8, 5, 6)
    out = layer(x, torch.ones(2, 8), torch.zeros(2, 8)) if name == "agin" else layer(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_get_norm_layer_is_case_insensitive() -> None:
    assert get_norm_layer("AGIN") is AGIN
    assert get_norm_layer("Gin") is GroupInstanceNorm


def test_get_norm_layer_unknown_name_raises_value_error_listing_known_names() -> None:
    with pytest.raises(ValueError) as info:
        get_norm_layer("layernorm")
    message = str(info.value)
    assert "layernorm" in message
    for known in ("agin", "gin", "in", "gn", "bn"):
        assert known in message


def test_get_norm_layer_passes_a_class_through() -> None:
    assert get_norm_layer(nn.LayerNorm) is nn.LayerNorm
    assert get_norm_layer(GroupInstanceNorm) is GroupInstanceNorm


def test_get_norm_layer_rejects_non_callables() -> None:
    with pytest.raises(ValueError):
        get_norm_layer(3)  # type: ignore[arg-type]


def test_register_norm_layer_adds_a_name() -> None:
    name = "test_identity_norm"
    assert name not in NORM_LAYERS
    try:
        register_norm_layer(name, lambda num_channels, **kwargs: nn.Identity())
        layer = get_norm_layer(name)(8)
        assert isinstance(layer, nn.Identity)
        assert get_norm_layer(name.upper()) is NORM_LAYERS[name]
    finally:
        NORM_LAYERS.pop(name, None)


def test_register_norm_layer_rejects_an_empty_name() -> None:
    with pytest.raises(ValueError, match="name"):
        register_norm_layer("", nn.Identity)
