"""The CAM auxiliary classifier of section 3.1.1 (after U-GAT-IT's class activation map attention)."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

__all__ = ["CAMAttention", "CAMOutput", "POOLINGS"]

POOLINGS = ("avg", "max", "median")


class CAMOutput(NamedTuple):
    """What :class:`CAMAttention` returns.

    features: attended features, (N, C, H, W).
    logits: one CAM logit per pooling, (N, len(pooling)); "does x come from the source domain?".
    heatmap: channel sum of the attended features, (N, 1, H, W).
    """

    features: torch.Tensor
    logits: torch.Tensor
    heatmap: torch.Tensor


def _pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "avg":
        return x.mean(dim=(2, 3))
    if kind == "max":
        return x.amax(dim=(2, 3))
    # Median pooling (the paper's MP): the lower median over all H*W positions of each channel.
    return x.flatten(2).median(dim=2).values


class CAMAttention(nn.Module):
    """Class-activation-map attention with one linear classifier per global pooling.

    For each pooling p (global average, max or median over H, W), a bias-free ``Linear(C, 1)`` classifies
    the pooled features; its weights w_p are the channel importances, the attention maps are
    ``M_p = w_p * E`` (section 3.1.1, M_g(x) = {W_g^i E_g^i}), and the logit is that classifier's output
    (A_g(x)). The maps of all poolings are concatenated and fused back to C channels by a 1x1 conv and an
    activation. The heatmap is the channel sum of the fused maps, as U-GAT-IT draws it.

    Args:
        channels: C, channels of the (N, C, H, W) encoder features.
        pooling: the global poolings, each "avg", "max" or "median". Default ("avg", "median"), the
            paper's GAP + MP; ("avg", "max") is U-GAT-IT's classifier.
        activation: "relu" (generator) or "leaky_relu" (discriminator, slope 0.2) after the fusion conv.
        spectral_norm: wrap the classifiers and the fusion conv in spectral normalization (discriminator).
    """

    def __init__(
        self,
        channels: int,
        pooling: Sequence[str] = ("avg", "median"),
        activation: str = "relu",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(channels, int) or channels <= 0:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if isinstance(pooling, str):
            pooling = (pooling,)
        pooling = tuple(pooling)
        if not pooling:
            raise ValueError(f"pooling must name at least one of {POOLINGS}, got an empty sequence")
        bad = [p for p in pooling if p not in POOLINGS]
        if bad:
            raise ValueError(f"unknown pooling {bad[0]!r}; pooling entries must be one of {POOLINGS}")
        if len(set(pooling)) != len(pooling):
            raise ValueError(f"pooling entries must be distinct, got {pooling}")
        if activation not in ("relu", "leaky_relu"):
            raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {activation!r}")
        self.channels = channels
        self.pooling = pooling
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        self.classifiers = nn.ModuleList(wrap(nn.Linear(channels, 1, bias=False)) for _ in pooling)
        self.fuse = wrap(nn.Conv2d(channels * len(pooling), channels, kernel_size=1, bias=True))
        self.act = nn.ReLU(inplace=True) if activation == "relu" else nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> CAMOutput:
        """Attend (N, C, H, W) features; see :class:`CAMOutput` for the shapes."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"CAMAttention expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"CAMAttention({self.channels}) expects input of shape (N, {self.channels}, H, W), got {tuple(x.shape)}")
        logits = []
        maps = []
        for kind, fc in zip(self.pooling, self.classifiers):
            logits.append(fc(_pool(x, kind)))
            # The parametrized weight is read once per forward: under spectral norm it is the normalized one.
            w = fc.weight.reshape(1, self.channels, 1, 1)
            maps.append(x * w.to(x.dtype))
        features = self.act(self.fuse(torch.cat(maps, dim=1)))
        heatmap = features.sum(dim=1, keepdim=True)
        return CAMOutput(features, torch.cat(logits, dim=1), heatmap)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, pooling={self.pooling}"
