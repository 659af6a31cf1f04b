"""The attentional generator of section 3.1.1 / 4.1 (U-GAT-IT's light ResNet generator with AGIN)."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CAMAttention
from .encoders import ENCODERS, build_encoder, encoder_channels, is_exporting as _is_exporting
from .image_processor import MIN_SIZE  # the smallest side the generator takes (reflection padding needs room)
from .norm import AGIN, AGIN_RHO_INIT, GIN_RHO_INIT, GroupInstanceNorm

__all__ = ["Generator", "GeneratorOutput", "HEADS", "ENCODER_NORMS", "MIN_SIZE", "AB_SCALE"]



#: Output layers a :class:`Generator` can end with.
HEADS = ("image", "logits", "ab")

#: CIELAB units per unit of an ``head="ab"`` output: the network predicts a* / AB_SCALE and b* / AB_SCALE.
AB_SCALE = 110.0

#: Normalizations the encoder can use: the paper's instance norm, or (our addition) batch or group norm.
ENCODER_NORMS = ("in", "bn", "gn")


class GeneratorOutput(NamedTuple):
    """What :class:`Generator` returns.

    image: (N, out_channels, H, W) in [-1, 1], the input's H and W; with ``head="logits"``, unbounded
        per-pixel scores instead (for instance over the ab bins of :func:`agincolor.color.ab_bin_centers`);
        with ``head="ab"``, CIELAB (a*, b*) divided by :data:`AB_SCALE`.
    cam_logits: (N, len(pooling)) CAM logits of the auxiliary classifier (N, 0) when ``use_cam=False``.
    heatmap: (N, 1, H', W') attention heatmap at the bottleneck resolution (about H/4, W/4 for the paper's
        encoder, H/32, W/32 for a pretrained one).
    """

    image: torch.Tensor
    cam_logits: torch.Tensor
    heatmap: torch.Tensor


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, bias: bool = True, reflect: bool = True) -> nn.Sequential:
    # Zero padding where maps can be smaller than the kernel (1x1 at stride 32), which reflection forbids.
    return nn.Sequential(
        nn.ReflectionPad2d(kernel // 2) if reflect else nn.ZeroPad2d(kernel // 2),
        nn.Conv2d(in_ch, out_ch, kernel_size=kernel, stride=stride, bias=bias),
    )


def _encoder_norm(kind: str, channels: int, num_groups: int) -> nn.Module:
    """The encoder's normalization: instance norm without affine (the paper's, no parameters), batch norm
    (statistics over the batch, running averages at inference) or group norm, both with affine."""
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(num_groups, channels)
    return nn.InstanceNorm2d(channels)


class ResidualBlock(nn.Module):
    """Encoder block: two 3x3 convs, each normalized (instance norm by default), ReLU between, identity shortcut."""

    def __init__(self, channels: int, norm: str = "in", num_groups: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, 3, bias=False),
            _encoder_norm(norm, channels, num_groups),
            nn.ReLU(inplace=True),
            _conv(channels, channels, 3, bias=False),
            _encoder_norm(norm, channels, num_groups),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AdaptiveResidualBlock(nn.Module):
    """Decoder block: two 3x3 convs, each followed by AGIN driven by the generator's gamma and beta."""

    def __init__(self, channels: int, num_groups: int, rho_init: float, learn_rho: bool, reflect: bool = True) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels, 3, bias=False, reflect=reflect)
        self.norm1 = AGIN(channels, num_groups, rho_init=rho_init, learn_rho=learn_rho)
        self.conv2 = _conv(channels, channels, 3, bias=False, reflect=reflect)
        self.norm2 = AGIN(channels, num_groups, rho_init=rho_init, learn_rho=learn_rho)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x), gamma, beta), inplace=True)
        return x + self.norm2(self.conv2(h), gamma, beta)


class UpsampleBlock(nn.Module):
    """x2 nearest upsampling, stride-1 3x3 conv, GroupInstanceNorm, ReLU (U-GAT-IT's ILN block)."""

    def __init__(self, in_ch: int, out_ch: int, num_groups: int, rho_init: float, learn_rho: bool) -> None:
        super().__init__()
        self.conv = _conv(in_ch, out_ch, 3, bias=False)
        self.norm = GroupInstanceNorm(out_ch, num_groups, rho_init=rho_init, learn_rho=learn_rho)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(x)), inplace=True)


class UNetBlock(nn.Module):
    """Decoder stage of the pretrained-encoder generator: upsample to the skip's size (nearest), concatenate
    the encoder's features of that stride, then ``convs`` 3x3 convs, each with GroupInstanceNorm and ReLU."""

    def __init__(
        self, in_ch: int, skip_ch: int, out_ch: int, num_groups: int, rho_init: float, learn_rho: bool, convs: int = 1
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_ch + skip_ch
        for _ in range(convs):
            layers += [
                _conv(ch, out_ch, 3, bias=False, reflect=False),
                GroupInstanceNorm(out_ch, num_groups, rho_init=rho_init, learn_rho=learn_rho),
                nn.ReLU(inplace=True),
            ]
            ch = out_ch
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.body(torch.cat([x, skip.to(x.dtype)], dim=1))


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class Generator(nn.Module):
    """Attentional colorization generator G (section 3.1.1, 4.1), on the paper's encoder or a pretrained one.

    ``encoder="paper"`` (the default) is the network of the paper. Encoder: 7x7 stem, two stride-2 3x3
    convs (instance norm, ReLU), ``num_blocks`` residual blocks with instance norm. Auxiliary classifier:
    :class:`CAMAttention` on the encoder features. A "light" MLP (as in U-GAT-IT's light model) maps
    globally averaged attention features to per-channel ``gamma`` and ``beta``. Decoder: ``num_blocks``
    adaptive residual blocks with :class:`AGIN`, two upsampling blocks (x2 nearest, stride-1 conv,
    :class:`GroupInstanceNorm`, ReLU), a 7x7 conv and tanh. Any H, W >= 32: the input is reflection-padded
    to a multiple of 4 and the output cropped back.

    ``encoder="efficientnet_lite0"`` (our addition) keeps the paper's attention and normalization but starts
    from an encoder that can be pretrained on ImageNet (:mod:`agincolor.encoders`; this constructor only
    builds it, :func:`agincolor.encoders.load_pretrained_encoder` fills it). A 1x1 conv brings the stride-32
    features to ``4 * base_channels``; the CAM classifier, the light gamma/beta MLP and ``num_blocks``
    AGIN residual blocks work there; a U-Net decoder (:class:`UNetBlock`) climbs back to full resolution
    with a skip from every encoder stride (16, 8, 4, 2) and from the input itself, with GroupInstanceNorm
    in its blocks. The input is reflection-padded to a multiple of 32 and the output cropped back, so the
    encoder's TensorFlow-style padding is the same for every input. The encoder's batch norm statistics
    stay frozen at the values loaded into it (ImageNet's for a fresh start; their affine weights learn),
    so batch 1 works and a photo's colours never depend on its batch. With ``in_channels=1`` the pretrained stem is summed over RGB.

    Args:
        in_channels (int, default 3): input channels; gray inputs are 3 equal channels unless set to 1.
        out_channels (int, default 3): output channels (3 for colour, 1 or 3 for gray, 2 for ``head="ab"``).
        base_channels (int, default 64): width of the stem; the bottleneck has 4x this many channels.
        num_blocks (int, default 4): residual blocks in the encoder and adaptive blocks in the decoder (for
            a pretrained encoder, the adaptive blocks at the bottleneck only).
        num_groups (int, default 32): group-norm groups in AGIN and GroupInstanceNorm; must divide every
            normalized width (base_channels, 2x and 4x it; or the bottleneck and ``decoder_channels``).
        pooling (tuple of str, default ("avg", "median")): CAM poolings; ("avg", "max") is U-GAT-IT's.
        use_cam (bool, default True): False removes the auxiliary classifier (the CAM ablation); the
            decoder then sees the plain encoder features and ``cam_logits`` has shape (N, 0).
        rho_init (float, default 0.1): initial rho of every AGIN (weight of group norm).
        upsample_rho_init (float, default 1.0): initial rho of the upsampling GroupInstanceNorms.
        learn_rho (bool, default True): False fixes every rho at its initial value (the GN-only and
            IN-only ablations set both inits to 1 or 0 with learn_rho=False).
        head (str, default "image"): "image" ends with the paper's 7x7 conv and tanh; "logits" (our
            addition, for colour as classification) ends with a 1x1 conv with bias and no activation, so
            that ``image`` holds ``out_channels`` unbounded scores per pixel; "ab" (ours) is a 1x1 conv to
            ``out_channels=2`` giving CIELAB a*, b* divided by :data:`AB_SCALE` (the Colorizer joins them
            with the input's lightness; nothing is spent predicting lightness the input already has).
        encoder_norm (str, default "in"): the paper encoder's normalization. "in" is the paper's instance
            norm, which removes each feature map's per-image mean and contrast; "bn" (batch norm) and "gn"
            (group norm, ``num_groups`` groups) are our additions for colorization, where how bright or
            how textured a whole photo is can tell what it shows. Only "in" with a pretrained encoder.
        encoder (str, default "paper"): "paper" or a pretrained-capable encoder of
            :data:`agincolor.encoders.ENCODERS` ("efficientnet_lite0", "efficientnet_lite1").
        decoder_channels (sequence of 5 ints, default None): widths of the U-Net decoder stages at strides
            16, 8, 4, 2 and 1 for a pretrained encoder; None gives 3, 2, 1.5, 1 and 0.5 times base_channels.
            Not used by the paper's encoder.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = 4,
        num_groups: int = 32,
        pooling: Sequence[str] = ("avg", "median"),
        use_cam: bool = True,
        rho_init: float = AGIN_RHO_INIT,
        upsample_rho_init: float = GIN_RHO_INIT,
        learn_rho: bool = True,
        head: str = "image",
        encoder_norm: str = "in",
        encoder: str = "paper",
        decoder_channels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(map(repr, HEADS))}, got {head!r}")
        if encoder_norm not in ENCODER_NORMS:
            raise ValueError(f"encoder_norm must be one of {', '.join(map(repr, ENCODER_NORMS))}, got {encoder_norm!r}")
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(map(repr, ENCODERS))}, got {encoder!r}")
        if encoder != "paper" and encoder_norm != "in":
            raise ValueError(f"encoder_norm applies to the paper's encoder only; encoder {encoder!r} has its own")
        if encoder == "paper" and decoder_channels is not None:
            raise ValueError("decoder_channels applies to a pretrained encoder only, not encoder 'paper'")
        in_channels = _positive_int("in_channels", in_channels)
        out_channels = _positive_int("out_channels", out_channels)
        base_channels = _positive_int("base_channels", base_channels)
        num_blocks = _positive_int("num_blocks", num_blocks)
        num_groups = _positive_int("num_groups", num_groups)
        if head == "ab" and out_channels != 2:
            raise ValueError(f"head 'ab' predicts CIELAB a* and b*: out_channels must be 2, got {out_channels}")
        if encoder != "paper" and in_channels not in (1, 3):
            raise ValueError(f"encoder {encoder!r} takes in_channels 1 or 3, got {in_channels}")
        c = base_channels
        bottleneck = 4 * c
        if encoder == "paper":
            widths: tuple[int, ...] = (c, 2 * c, bottleneck)
        else:
            if decoder_channels is None:
                decoder_channels = (3 * c, 2 * c, (3 * c) // 2, c, max(c // 2, 1))
            decoder_channels = tuple(decoder_channels)
            if len(decoder_channels) != 5:
                raise ValueError(f"decoder_channels must give 5 widths (strides 16, 8, 4, 2, 1), got {decoder_channels}")
            for i, ch in enumerate(decoder_channels):
                _positive_int(f"decoder_channels[{i}]", ch)
            widths = (bottleneck, *decoder_channels)
        for ch in widths:
            if ch % num_groups:
                raise ValueError(
                    f"num_groups={num_groups} must divide every normalized width "
                    f"({', '.join(map(str, widths))}); it does not divide {ch}"
                )
        for name, value in (("rho_init", rho_init), ("upsample_rho_init", upsample_rho_init)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.head_kind = head
        self.encoder_norm = encoder_norm
        self.encoder_name = encoder
        self.use_cam = bool(use_cam)
        pretrained = encoder != "paper"
        #: The input is padded to a multiple of this (the encoder's total stride) and cropped back.
        self.size_multiple = 32 if pretrained else 4

        if pretrained:
            self.encoder = build_encoder(encoder, in_channels=in_channels)
            skips = encoder_channels(encoder)
            self.bridge = nn.Sequential(nn.Conv2d(skips[32], bottleneck, kernel_size=1), nn.ReLU(inplace=True))
        else:
            self.encoder = nn.Sequential(
                _conv(in_channels, c, 7, bias=False),
                _encoder_norm(encoder_norm, c, num_groups),
                nn.ReLU(inplace=True),
                _conv(c, 2 * c, 3, stride=2, bias=False),
                _encoder_norm(encoder_norm, 2 * c, num_groups),
                nn.ReLU(inplace=True),
                _conv(2 * c, bottleneck, 3, stride=2, bias=False),
                _encoder_norm(encoder_norm, bottleneck, num_groups),
                nn.ReLU(inplace=True),
                *[ResidualBlock(bottleneck, encoder_norm, num_groups) for _ in range(num_blocks)],
            )
        # Constructed even when unused so that pooling is validated the same way in every configuration.
        cam = CAMAttention(bottleneck, pooling=pooling, activation="relu")
        self.cam = cam if self.use_cam else None
        self.num_cam_logits = len(cam.pooling) if self.use_cam else 0
        self.mlp = nn.Sequential(
            nn.Linear(bottleneck, bottleneck, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(bottleneck, bottleneck, bias=False),
            nn.ReLU(inplace=True),
        )
        self.to_gamma = nn.Linear(bottleneck, bottleneck, bias=False)
        self.to_beta = nn.Linear(bottleneck, bottleneck, bias=False)
        self.decoder_blocks = nn.ModuleList(
            AdaptiveResidualBlock(bottleneck, num_groups, rho_init, learn_rho, reflect=not pretrained)
            for _ in range(num_blocks)
        )
        if pretrained:
            skip_widths = (skips[16], skips[8], skips[4], skips[2], in_channels)
            ins = (bottleneck, *decoder_channels[:-1])
            # Two convs where maps are small and cheap, one at the two finest strides.
            self.upsample = nn.ModuleList(
                UNetBlock(i, s, o, num_groups, upsample_rho_init, learn_rho, convs=2 if k < 3 else 1)
                for k, (i, s, o) in enumerate(zip(ins, skip_widths, decoder_channels))
            )
            last = decoder_channels[-1]
        else:
            self.upsample = nn.Sequential(
                UpsampleBlock(bottleneck, 2 * c, num_groups, upsample_rho_init, learn_rho),
                UpsampleBlock(2 * c, c, num_groups, upsample_rho_init, learn_rho),
            )
            last = c
        if head == "image":
            self.head = nn.Sequential(_conv(last, out_channels, 7, bias=False), nn.Tanh())
        else:
            self.head = nn.Sequential(nn.Conv2d(last, out_channels, kernel_size=1))

    def forward(self, x: torch.Tensor) -> GeneratorOutput:
        """Translate (N, in_channels, H, W) images in [-1, 1]; see :class:`GeneratorOutput`."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"Generator expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Generator expects input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(f"Generator needs H and W of at least {MIN_SIZE}, got {h}x{w}")
        m = self.size_multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        # An exported graph (ONNX, dynamic H and W) must pad and crop for every size: a Python test on the
        # traced sizes would fix the branch of the example input into the graph.
        exporting = _is_exporting()
        if exporting or pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")

        if self.encoder_name == "paper":
            features = self.encoder(x)
            skips: list[torch.Tensor] = []
        else:
            *skips, deepest = self.encoder(x)
            skips = [x, *skips]
            features = self.bridge(deepest)
        if self.cam is not None:
            features, cam_logits, heatmap = self.cam(features)
        else:
            cam_logits = features.new_zeros(features.shape[0], 0)
            heatmap = features.sum(dim=1, keepdim=True)
        style = self.mlp(features.mean(dim=(2, 3)))
        gamma, beta = self.to_gamma(style), self.to_beta(style)
        for block in self.decoder_blocks:
            features = block(features, gamma, beta)
        if self.encoder_name == "paper":
            features = self.upsample(features)
        else:
            for block in self.upsample:
                features = block(features, skips.pop())
        image = self.head(features)
        if exporting or pad_h or pad_w:
            image = image[..., :h, :w]
        return GeneratorOutput(image, cam_logits, heatmap)
