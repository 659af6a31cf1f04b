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


# --- on a pretrained-capable encoder (EfficientNet-Lite0) --------------------------------------------

# Decoder widths default to 3, 2, 1.5, 1 and 0.5 x base_channels (24, 16, 12, 8, 4) under a bottleneck of
# 32: num_groups 4 divides them all.
LITE0_AB = {
    "encoder": "efficientnet_lite0",
    "in_channels": 1,
    "out_channels": 2,
    "head": "ab",
    "base_channels": 8,
    "num_blocks": 1,
    "num_groups": 4,
}


@pytest.fixture(scope="module")
def lite0_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(**LITE0_AB).eval()


@pytest.mark.parametrize(("h", "w"), [(32, 32), (33, 47), (64, 96)])
def test_lite0_ab_generator_keeps_the_input_size_with_its_heatmap_at_stride_32(
    lite0_generator: Generator, h: int, w: int
) -> None:
    assert lite0_generator.size_multiple == 32
    with torch.no_grad():
        out = lite0_generator(torch.rand(2, 1, h, w) * 2 - 1)
    assert out.image.shape == (2, 2, h, w)
    assert out.cam_logits.shape == (2, 2)
    # The input is padded to a multiple of 32; the bottleneck is that at 1/32.
    assert out.heatmap.shape == (2, 1, math.ceil(h / 32), math.ceil(w / 32))
    assert torch.isfinite(out.image).all()


@pytest.mark.parametrize("mode", ["as built", "after eval then train"])
def test_lite0_generator_takes_a_batch_of_one_in_training_mode_with_frozen_encoder_statistics(mode: str) -> None:
    torch.manual_seed(0)
    model = Generator(**LITE0_AB)  # a new module is in training mode
    if mode != "as built":
        model.eval().train()
    assert model.training
    norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not [m for m in norms if m.training]
    before = [m.running_mean.clone() for m in norms]
    out = model(torch.rand(1, 1, 32, 32) * 2 - 1)  # a 1x1 map at stride 32
    assert out.image.shape == (1, 2, 32, 32) and out.heatmap.shape == (1, 1, 1, 1)
    assert torch.isfinite(out.image).all() and torch.isfinite(out.cam_logits).all()
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before))


def test_lite0_generator_output_does_not_depend_on_the_batch_even_while_training() -> None:
    torch.manual_seed(0)
    model = Generator(**LITE0_AB).eval().train()
    x = torch.rand(3, 1, 40, 36) * 2 - 1
    with torch.no_grad():
        together = model(x).image
        alone = model(x[1:2]).image
    torch.testing.assert_close(together[1:2], alone, rtol=1e-5, atol=1e-5)


def test_lite0_generator_with_rgb_input_and_image_head() -> None:
    model = Generator(encoder="efficientnet_lite0", **TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 48, 40) * 2 - 1)
    assert out.image.shape == (1, 3, 48, 40)
    assert out.image.min() >= -1.0 and out.image.max() <= 1.0  # the paper's tanh head


def test_lite0_generator_decoder_channels_set_the_unet_widths() -> None:
    model = Generator(**{**LITE0_AB, "decoder_channels": (16, 16, 8, 8, 4)})
    widths = [block.body[0][1].out_channels for block in model.upsample]
    assert widths == [16, 16, 8, 8, 4]
    assert model.head[0].in_channels == 4
    assert model(torch.zeros(1, 1, 32, 64)).image.shape == (1, 2, 32, 64)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"out_channels": 3}, "out_channels"),
        ({"out_channels": 1}, "out_channels"),
        ({"encoder_norm": "bn"}, "encoder_norm"),
        ({"encoder_norm": "gn"}, "encoder_norm"),
        ({"num_groups": 8}, "num_groups"),  # 8 does not divide the widths 12 and 4
        ({"num_groups": 3}, "num_groups"),
        ({"encoder": "resnet50"}, "encoder"),
        ({"in_channels": 2}, "in_channels"),
        ({"decoder_channels": (24, 16, 12, 8)}, "decoder_channels"),
        ({"decoder_channels": (24, 16, 12, 8, 0)}, "decoder_channels"),
    ],
)
def test_lite0_generator_rejects_bad_arguments_naming_them(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        Generator(**{**LITE0_AB, **kwargs})


def test_decoder_channels_are_refused_for_the_paper_encoder() -> None:
    with pytest.raises(ValueError, match="decoder_channels"):
        Generator(**TINY, decoder_channels=(24, 16, 12, 8, 4))


def test_unknown_encoder_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'paper', 'efficientnet_lite0'"):
        Generator(**TINY, encoder="resnet50")


def test_the_paper_generator_is_unchanged_by_the_pretrained_encoder_option() -> None:
    model = Generator()
    assert model.encoder_name == "paper" and model.size_multiple == 4 and model.head_kind == "image"
    state = model.state_dict()
    assert not [k for k in state if "bridge" in k or "stem" in k]
    # The paper layout's tensors, counted before the option existed: 44 tensors, 10,589,888 numbers.
    assert len(state) == 44 and sum(v.numel() for v in state.values()) == 10_589_888
    assert isinstance(model.encoder, torch.nn.Sequential) and isinstance(model.upsample, torch.nn.Sequential)
    tiny = Generator(**TINY)
    assert tiny.size_multiple == 4
    assert tiny(torch.zeros(1, 3, 33, 35)).heatmap.shape == (1, 1, 9, 9)


def test_lite0_generator_gradients_reach_encoder_and_decoder_in_one_backward() -> None:
    torch.manual_seed(0)
    model = Generator(**LITE0_AB).eval().train()
    out = model(torch.rand(2, 1, 33, 47) * 2 - 1)
    (out.image.square().mean() + out.cam_logits.sum()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name

    def reached(prefix: str) -> list[str]:
        return [n for n, p in model.named_parameters() if n.startswith(prefix) and p.grad.abs().sum() > 0]

    # Every encoder parameter (through the bridge and every skip), down to the stem's first conv.
    encoder = [n for n, _ in model.named_parameters() if n.startswith("encoder.")]
    assert reached("encoder.") == encoder
    assert "encoder.stem.0.weight" in encoder
    for prefix in ("bridge.", "cam.", "mlp.", "to_gamma.", "to_beta.", "decoder_blocks.", "upsample.", "head."):
        assert reached(prefix), prefix
    # Each U-Net stage's first conv, down to the finest stride.
    for k in range(5):
        assert f"upsample.{k}.body.0.1.weight" in reached("upsample."), k
