"""The two-scale attentional PatchGAN discriminator of sections 3.1.2 and 4.1."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .attention import CAMAttention
from .generator import _positive_int

__all__ = ["Discriminator", "DiscriminatorOutput", "PatchDiscriminator"]


class DiscriminatorOutput(NamedTuple):
    """One scale's verdict.

    patch_logits: (N, 1, h, w) least-squares real/fake score per patch.
    cam_logits: (N, len(pooling)) logits of this scale's CAM auxiliary classifier.
    heatmap: (N, 1, h', w') attention heatmap of this scale.
    """

    patch_logits: torch.Tensor
    cam_logits: torch.Tensor
    heatmap: torch.Tensor


def _sn_conv(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReflectionPad2d(1),
        spectral_norm(nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=stride, bias=True)),
    )


class PatchDiscriminator(nn.Module):
    """One PatchGAN scale with a CAM classifier (U-GAT-IT's discriminator layout).

    ``num_layers - 2`` stride-2 4x4 convs, one stride-1 4x4 conv, the CAM attention, and a stride-1 4x4
    conv to one channel; spectral norm everywhere, LeakyReLU 0.2. Its receptive field is
    ``9 * 2**(num_layers - 2) - 2`` pixels: 70 for 5 layers, 286 for 7.

    Args:
        in_channels: input channels.
        base_channels: width of the first conv; doubles at each later conv.
        num_layers: total 4x4 convs (>= 3).
        max_channels: cap on any layer's width (None: no cap, as in U-GAT-IT).
        pooling: CAM poolings.
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int,
        num_layers: int,
        max_channels: int | None,
        pooling: Sequence[str],
    ) -> None:
        super().__init__()
        cap = max_channels if max_channels is not None else 1 << 30
        widths = [min(base_channels * 2**i, cap) for i in range(num_layers - 1)]
        layers: list[nn.Module] = [_sn_conv(in_channels, widths[0], 2), nn.LeakyReLU(0.2, inplace=True)]
        for i in range(1, num_layers - 2):
            layers += [_sn_conv(widths[i - 1], widths[i], 2), nn.LeakyReLU(0.2, inplace=True)]
        layers += [_sn_conv(widths[num_layers - 3], widths[num_layers - 2], 1), nn.LeakyReLU(0.2, inplace=True)]
        self.body = nn.Sequential(*layers)
        top = widths[num_layers - 2]
        self.cam = CAMAttention(top, pooling=pooling, activation="leaky_relu", spectral_norm=True)
        self.head = _sn_conv(top, 1, 1)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        features, cam_logits, heatmap = self.cam(self.body(x))
        return DiscriminatorOutput(self.head(features), cam_logits, heatmap)


class Discriminator(nn.Module):
    """Two-scale attentional PatchGAN discriminator D (section 3.1.2, 4.1).

    A local scale (5 convs, 70x70 receptive field) and a global scale (7 convs, 286x286 receptive
    field), both on the full-resolution input, each with spectral norm, LeakyReLU 0.2 and its own CAM
    auxiliary classifier. ``forward`` returns a tuple ``(local, global)`` of :class:`DiscriminatorOutput`.

    Args:
        in_channels (int, default 3): channels of the judged images.
        base_channels (int, default 64): width of each scale's first conv.
        local_layers (int, default 5): convs in the local scale (5 gives the 70x70 PatchGAN).
        global_layers (int, default 7): convs in the global scale (7 gives 286x286).
        max_channels (int or None, default None): cap on any conv's width. None reproduces U-GAT-IT
            (its global scale reaches 2048 channels and 53M parameters); 256 or 512 gives a small model.
        pooling (tuple of str, default ("avg", "median")): CAM poolings of both scales.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        local_layers: int = 5,
        global_layers: int = 7,
        max_channels: int | None = None,
        pooling: Sequence[str] = ("avg", "median"),
    ) -> None:
        super().__init__()
        self.in_channels = _positive_int("in_channels", in_channels)
        _positive_int("base_channels", base_channels)
        for name, value in (("local_layers", local_layers), ("global_layers", global_layers)):
            if _positive_int(name, value) < 3:
                raise ValueError(f"{name} must be at least 3, got {value}")
        if max_channels is not None:
            _positive_int("max_channels", max_channels)
        self.global_layers = global_layers
        # Each stride-2 conv halves the size and the two stride-1 convs take one pixel each; the last
        # reflection pad needs at least 2 pixels left, so the input needs 3 * 2**(layers - 2).
        self.min_size = 3 * 2 ** (max(local_layers, global_layers) - 2)
        self.local = PatchDiscriminator(in_channels, base_channels, local_layers, max_channels, pooling)
        self.global_ = PatchDiscriminator(in_channels, base_channels, global_layers, max_channels, pooling)

    def forward(self, x: torch.Tensor) -> tuple[DiscriminatorOutput, DiscriminatorOutput]:
        """Judge (N, in_channels, H, W) images in [-1, 1]; returns (local, global) outputs."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"Discriminator expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Discriminator expects input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"Discriminator with global_layers={self.global_layers} needs H and W of at least "
                f"{self.min_size}, got {x.shape[-2]}x{x.shape[-1]}"
            )
        return self.local(x), self.global_(x)
