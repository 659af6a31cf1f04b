"""Tests for agincolor.generator: shapes at any size, CAM ablation, rho handling and argument checks."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agincolor import AGIN, Generator, GeneratorOutput, GroupInstanceNorm
from agincolor.generator import MIN_SIZE

TINY = {"base_channels": 8, "num_blocks": 1, "num_groups": 4}


@pytest.fixture(scope="module")
def tiny_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(**TINY).eval()


@settings(max_examples=12, deadline=None)
@given(h=st.integers(32, 70), w=st.integers(32, 70), n=st.integers(1, 2))
def test_generator_preserves_any_size_from_32_to_70(tiny_generator: Generator, h: int, w: int, n: int) -> None:
    with torch.no_grad():
        out = tiny_generator(torch.rand(n, 3, h, w) * 2 - 1)
    assert isinstance(out, GeneratorOutput)
    assert out.image.shape == (n, 3, h, w)
    assert out.image.min() >= -1.0 and out.image.max() <= 1.0
    assert out.cam_logits.shape == (n, 2)
    # The bottleneck is the input, padded to a multiple of 4, at a quarter of the size.
    assert out.heatmap.shape == (n, 1, math.ceil(h / 4), math.ceil(w / 4))
    assert abs(out.heatmap.shape[-2] - h / 4) < 1 and abs(out.heatmap.shape[-1] - w / 4) < 1


def test_generator_output_does_not_depend_on_the_batch() -> None:
    torch.manual_seed(0)
    model = Generator(**TINY).eval()
    x = torch.rand(2, 3, 34, 41) * 2 - 1
    with torch.no_grad():
        both = model(x).image
        first = model(x[:1]).image
    torch.testing.assert_close(both[:1], first, rtol=1e-5, atol=1e-5)


def test_generator_with_gray_input_and_gray_output_channels() -> None:
    model = Generator(in_channels=1, out_channels=1, **TINY)
    out = model(torch.zeros(1, 1, 32, 36))
    assert out.image.shape == (1, 1, 32, 36)


@pytest.mark.parametrize(("pooling", "count"), [(("avg", "max"), 2), (("median",), 1)])
def test_generator_cam_logits_have_one_column_per_pooling(pooling: tuple[str, ...], count: int) -> None:
    out = Generator(pooling=pooling, **TINY)(torch.zeros(2, 3, 32, 32))
    assert out.cam_logits.shape == (2, count)


def test_generator_without_cam_has_empty_logits_and_no_cam_weights() -> None:
    model = Generator(use_cam=False, **TINY)
    out = model(torch.rand(2, 3, 32, 40) * 2 - 1)
    assert out.cam_logits.shape == (2, 0)
    assert out.image.shape == (2, 3, 32, 40)
    assert out.heatmap.shape == (2, 1, 8, 10)
    assert not [key for key in model.state_dict() if "cam" in key]
    with_cam = Generator(**TINY)
    assert [key for key in with_cam.state_dict() if key.startswith("cam.")]


def test_generator_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = Generator(**TINY)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    out = model(x)
    (out.image.square().mean() + out.cam_logits.sum()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_generator_shares_one_gamma_and_beta_across_adaptive_blocks() -> None:
    model = Generator(base_channels=8, num_blocks=2, num_groups=4)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [
        m.register_forward_hook(lambda mod, args, out: seen.append((args[1], args[2])))
        for m in model.modules()
        if isinstance(m, AGIN)
    ]
    model(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    assert len(seen) == 4
    for gamma, beta in seen[1:]:
        assert gamma is seen[0][0] and beta is seen[0][1]


def test_generator_rho_init_and_upsample_rho_init_set_every_rho() -> None:
    model = Generator(rho_init=0.25, upsample_rho_init=0.75, **TINY)
    for m in model.modules():
        if isinstance(m, AGIN):
            assert torch.all(m.rho == 0.25)
        elif isinstance(m, GroupInstanceNorm):
            assert torch.all(m.rho == 0.75)


def test_generator_learn_rho_false_makes_every_rho_a_buffer() -> None:
    model = Generator(learn_rho=False, rho_init=1.0, upsample_rho_init=1.0, **TINY)
    assert not [name for name, _ in model.named_parameters() if name.endswith(".rho")]
    buffers = [name for name, _ in model.named_buffers() if name.endswith(".rho")]
    assert len(buffers) == 4


def test_generator_default_construction_matches_the_paper_layout() -> None:
    model = Generator()
    agin = [m for m in model.modules() if isinstance(m, AGIN)]
    gin = [m for m in model.modules() if isinstance(m, GroupInstanceNorm)]
    # 4 adaptive residual blocks with two AGIN each; two upsampling blocks with GroupInstanceNorm.
    assert len(agin) == 8 and len(gin) == 2
    assert all(m.num_channels == 256 and m.num_groups == 32 for m in agin)
    assert [m.num_channels for m in gin] == [128, 64]


# --- constructor errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"in_channels": 0}, "in_channels"),
        ({"out_channels": -1}, "out_channels"),
        ({"base_channels": 0}, "base_channels"),
        ({"base_channels": 8.0}, "base_channels"),
        ({"num_blocks": 0}, "num_blocks"),
        ({"num_blocks": True}, "num_blocks"),
        ({"num_groups": 0}, "num_groups"),
        ({"num_groups": 3}, "num_groups"),
        ({"base_channels": 12, "num_groups": 8}, "num_groups"),
        ({"rho_init": 1.5}, "rho_init"),
        ({"rho_init": -0.01}, "rho_init"),
        ({"upsample_rho_init": 2.0}, "upsample_rho_init"),
        ({"pooling": ("avg", "mean")}, "pooling"),
        ({"pooling": ()}, "pooling"),
        ({"pooling": ("max", "max")}, "pooling"),
        ({"use_cam": False, "pooling": ("gem",)}, "pooling"),
        ({"head": "softmax"}, "head"),
        ({"encoder_norm": "ln"}, "encoder_norm"),
    ],
)
def test_generator_constructor_rejects_bad_arguments_naming_them(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        Generator(**{**TINY, **kwargs})


def test_encoder_norm_picks_the_encoders_normalization_and_leaves_the_paper_layout_by_default() -> None:
    kinds = {
        name: {type(m) for m in Generator(**TINY, encoder_norm=name).encoder.modules()}
        for name in ("in", "bn", "gn")
    }
    norms = (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d, torch.nn.GroupNorm)
    assert [k & set(norms) for k in kinds.values()] == [{n} for n in norms]
    # The paper's instance norm has no parameters, so the default's weights are those of before.
    assert not any(k.startswith("encoder.1.") for k in Generator(**TINY).state_dict())
    assert Generator(**TINY, encoder_norm="gn").encoder[1].num_groups == TINY["num_groups"]


def test_instance_norm_encoder_ignores_a_photos_brightness_and_contrast_and_batch_norm_does_not() -> None:
    # Why encoder_norm exists: instance norm after the bias-free stem removes each map's per-image mean and
    # scale, so a photo and a darker, flatter copy of it are the same to the encoder.
    torch.manual_seed(0)
    x = torch.rand(2, 3, 40, 40) * 2 - 1
    dimmer = 0.5 * x - 0.3
    for name, same in (("in", True), ("bn", False)):
        g = Generator(**TINY, encoder_norm=name).eval()
        if name == "bn":
            with torch.no_grad():  # running statistics as after some training
                g.train()
                for _ in range(3):
                    g(torch.rand(4, 3, 40, 40) * 2 - 1)
                g.eval()
        with torch.no_grad():
            a, b = g.encoder(x), g.encoder(dimmer)
        assert torch.allclose(a, b, atol=1e-3) is same, name


def test_logits_head_gives_unbounded_scores_of_any_count_at_the_input_size() -> None:
    torch.manual_seed(0)
    g = Generator(**TINY, out_channels=50, head="logits")
    out = g(torch.rand(2, 3, 36, 44) * 2 - 1)
    assert out.image.shape == (2, 50, 36, 44)
    assert out.image.abs().max() > 1.0  # no tanh
    heads = {k: tuple(v.shape) for k, v in g.state_dict().items() if k.startswith("head.")}
    assert heads == {"head.0.weight": (50, 8, 1, 1), "head.0.bias": (50,)}  # a 1x1 conv with bias
    body = {k for k in g.state_dict() if not k.startswith("head.")}
    assert body == {k for k in Generator(**TINY).state_dict() if not k.startswith("head.")}


# --- forward errors ----------------------------------------------------------------------------------


def test_generator_rejects_a_non_tensor_with_type_error(tiny_generator: Generator) -> None:
    with pytest.raises(TypeError, match="torch.Tensor"):
        tiny_generator([[0.0] * 32] * 32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ((1, 1, 32, 32), r"\(N, 3, H, W\)"),
        ((1, 4, 32, 32), r"\(N, 3, H, W\)"),
        ((3, 32, 32), r"\(N, 3, H, W\)"),
        ((1, 3, 31, 64), "at least 32"),
        ((1, 3, 64, 16), "at least 32"),
    ],
)
def test_generator_rejects_bad_input_shapes_with_clear_value_error(
    tiny_generator: Generator, shape: tuple[int, ...], pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern):
        tiny_generator(torch.zeros(shape))


def test_generator_minimum_size_is_32() -> None:
    assert MIN_SIZE == 32
