"""Normalization layers: AGIN (Gao et al. 2020, eqs. 1-3), GroupInstanceNorm, and a name registry.

Both AGIN and GroupInstanceNorm mix group normalization (GN) and instance normalization (IN) with a
learnable per-channel weight ``rho``::

    out = gamma * (rho * GN(x) + (1 - rho) * IN(x)) + beta

``rho`` near 1 selects group norm, near 0 instance norm. AGIN takes ``gamma`` and ``beta`` per sample from
the caller (the generator predicts them from attention features); GroupInstanceNorm owns them.

Both mixes are computed in one pass: the per-channel mean and variance of ``x`` give the instance
statistics, and the group statistics follow from them exactly (a group's variance is the mean of its
channels' variances plus the spread of their means). The whole layer then reduces to one per-channel
``x * scale + shift``, so the large activation is read twice (statistics, affine) and autograd stores
only ``x`` and the small per-channel tensors.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = [
    "AGIN",
    "GroupInstanceNorm",
    "clip_rho_",
    "get_norm_layer",
    "register_norm_layer",
    "NORM_LAYERS",
]

# U-GAT-IT initialises AdaLIN's instance weight at 0.9 and ILN's at 0.0 (all layer norm). Our rho weighs
# group norm instead, so the same starting points are rho = 0.1 for AGIN and rho = 1.0 for GIN.
AGIN_RHO_INIT = 0.1
GIN_RHO_INIT = 1.0


def _check_common(num_channels: int, num_groups: int, eps: float, rho_init: float) -> None:
    if not isinstance(num_channels, int) or num_channels <= 0:
        raise ValueError(f"num_channels must be a positive int, got {num_channels!r}")
    if not isinstance(num_groups, int) or num_groups <= 0:
        raise ValueError(f"num_groups must be a positive int, got {num_groups!r}")
    if num_channels % num_groups != 0:
        raise ValueError(
            f"num_groups={num_groups} must divide num_channels={num_channels}; "
            f"choose a divisor of {num_channels} (e.g. {_largest_divisor(num_channels, num_groups)})"
        )
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    if not 0.0 <= float(rho_init) <= 1.0:
        raise ValueError(f"rho_init must lie in [0, 1], got {rho_init!r}")


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def group_instance_norm(
    x: torch.Tensor,
    rho: torch.Tensor,
    num_groups: int,
    eps: float,
    gamma: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
) -> torch.Tensor:
    """Functional form of ``gamma * (rho * GN(x) + (1 - rho) * IN(x)) + beta``.

    Args:
        x: (N, C, H, W) activations.
        rho: (1, C, 1, 1) weight of group norm, expected in [0, 1].
        num_groups: number of GN groups; must divide C.
        eps: added to the variance before the square root, as torch's norm layers do.
        gamma, beta: affine terms broadcastable to (N, C, 1, 1), or None for none.
    """
    n, c = x.shape[:2]
    # Statistics in float32 at least, so bfloat16/float16 activations under autocast stay stable.
    stat_dtype = torch.promote_types(x.dtype, torch.float32)
    xs = x.to(stat_dtype)
    var_c, mean_c = torch.var_mean(xs, dim=(2, 3), correction=0)  # (N, C)
    mean_g = mean_c.view(n, num_groups, -1).mean(dim=2, keepdim=True)  # (N, G, 1)
    # Exact group variance from channel statistics (all channels cover the same number of pixels).
    var_g = (var_c.view(n, num_groups, -1) + (mean_c.view(n, num_groups, -1) - mean_g) ** 2).mean(
        dim=2, keepdim=True
    )
    inv_g = torch.rsqrt(var_g + eps).expand(n, num_groups, c // num_groups).reshape(n, c)
    mean_g = mean_g.expand(n, num_groups, c // num_groups).reshape(n, c)
    inv_i = torch.rsqrt(var_c + eps)
    r = rho.reshape(1, c).to(stat_dtype)
    scale = r * inv_g + (1 - r) * inv_i
    shift = -(r * mean_g * inv_g + (1 - r) * mean_c * inv_i)
    if gamma is not None:
        g = gamma.reshape(-1, c).to(stat_dtype)
        scale = scale * g
        shift = shift * g
    if beta is not None:
        shift = shift + beta.reshape(-1, c).to(stat_dtype)
    # The affine runs at statistics precision: in bfloat16, x * scale and shift are large and nearly
    # cancel for channels whose mean dwarfs their spread.
    out = torch.addcmul(shift[:, :, None, None], xs, scale[:, :, None, None])
    return out.to(x.dtype)


class _GroupInstanceBase(nn.Module):
    rho: torch.Tensor

    def __init__(
        self,
        num_channels: int,
        num_groups: int,
        eps: float,
        rho_init: float,
        learn_rho: bool,
    ) -> None:
        super().__init__()
        _check_common(num_channels, num_groups, eps, rho_init)
        self.num_channels = num_channels
        self.num_groups = num_groups
        self.eps = float(eps)
        self.learn_rho = bool(learn_rho)
        rho = torch.full((1, num_channels, 1, 1), float(rho_init))
        if self.learn_rho:
            self.rho = nn.Parameter(rho)
        else:
            # A fixed rho (the GN-only and IN-only ablations) is state, not a parameter: no optimizer moves it.
            self.register_buffer("rho", rho)

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"{type(self).__name__}({self.num_channels}) expects input of shape (N, {self.num_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return (
            f"{self.num_channels}, num_groups={self.num_groups}, eps={self.eps}, "
            f"learn_rho={self.learn_rho}"
        )


class GroupInstanceNorm(_GroupInstanceBase):
    """Group-Instance Normalization (GIN): a learnable mix of group and instance norm with its own affine.

    The non-adaptive counterpart of :class:`AGIN`, used in the generator's upsampling blocks where U-GAT-IT
    uses ILN. ``out = gamma * (rho * GN(x) + (1 - rho) * IN(x)) + beta`` with per-channel learnable
    ``gamma`` (init 1), ``beta`` (init 0) and ``rho`` (init ``rho_init``), each of shape (1, C, 1, 1).

    Args:
        num_channels: C, the channel count of the (N, C, H, W) input.
        num_groups: number of group-norm groups; must divide ``num_channels``. Default 32 (the GN paper's).
        eps: added to each variance before the square root. Default 1e-5.
        rho_init: initial weight of group norm, in [0, 1]. Default 1.0.
        learn_rho: if False, rho is a fixed buffer (ablations: 1 = GN only, 0 = IN only).
    """

    def __init__(
        self,
        num_channels: int,
        num_groups: int = 32,
        eps: float = 1e-5,
        rho_init: float = GIN_RHO_INIT,
        learn_rho: bool = True,
    ) -> None:
        super().__init__(num_channels, num_groups, eps, rho_init, learn_rho)
        self.gamma = nn.Parameter(torch.ones(1, num_channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize (N, C, H, W) ``x``; returns a tensor of the same shape and dtype."""
        self._check_input(x)
        return group_instance_norm(x, self.rho, self.num_groups, self.eps, self.gamma, self.beta)


class AGIN(_GroupInstanceBase):
    """Adaptive Group-Instance Normalization, eqs. 1-3 of Gao et al. 2020.

    ``AGIN(x, gamma, beta) = gamma * (rho * GN(x) + (1 - rho) * IN(x)) + beta``, where GN and IN carry no
    affine of their own and ``gamma``, ``beta`` of shape (N, C) come from the caller (the generator's
    fully connected layers). ``rho`` is a learnable per-channel weight of shape (1, C, 1, 1); eq. 3's
    projected step is :func:`clip_rho_`, called after every optimizer step.

    Two readings of the printed equations: eqs. 1-2 apply gamma and beta both inside m_G, m_I and again
    outside, which adds nothing but a second affine; we apply them once, as AdaLIN does. Eq. 2 divides
    by ``sigma + eps``; we divide by ``sqrt(var + eps)`` like every torch norm layer.

    Args:
        num_channels: C, the channel count of the (N, C, H, W) input.
        num_groups: number of group-norm groups; must divide ``num_channels``. Default 32.
        eps: added to each variance before the square root. Default 1e-5.
        rho_init: initial weight of group norm, in [0, 1]. Default 0.1 (mostly instance norm, the
            mirror of U-GAT-IT's AdaLIN initialisation).
        learn_rho: if False, rho is a fixed buffer (ablations: 1 = GN only, 0 = IN only).
    """

    def __init__(
        self,
        num_channels: int,
        num_groups: int = 32,
        eps: float = 1e-5,
        rho_init: float = AGIN_RHO_INIT,
        learn_rho: bool = True,
    ) -> None:
        super().__init__(num_channels, num_groups, eps, rho_init, learn_rho)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Normalize (N, C, H, W) ``x`` and apply per-sample ``gamma``, ``beta`` of shape (N, C)."""
        self._check_input(x)
        n, c = x.shape[:2]
        for name, t in (("gamma", gamma), ("beta", beta)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"AGIN {name} must be a torch.Tensor, got {type(t).__name__}")
            if tuple(t.shape) not in ((n, c), (n, c, 1, 1)):
                raise ValueError(f"AGIN {name} must have shape ({n}, {c}) for input {tuple(x.shape)}, got {tuple(t.shape)}")
        return group_instance_norm(x, self.rho, self.num_groups, self.eps, gamma, beta)


@torch.no_grad()
def clip_rho_(module: nn.Module) -> nn.Module:
    """Clamp ``rho`` to [0, 1] in every AGIN and GroupInstanceNorm inside ``module`` (eq. 3), in place.

    Call it after each optimizer step. Returns ``module`` for chaining.
    """
    for m in module.modules():
        if isinstance(m, _GroupInstanceBase):
            m.rho.clamp_(0.0, 1.0)
    return module


class _InstanceNorm(nn.InstanceNorm2d):
    """Instance norm with a learnable affine, constructed like the other registry entries."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, affine=affine)


class _GroupNorm(nn.GroupNorm):
    """Group norm whose first argument is the channel count, so it swaps with the other norms."""

    def __init__(self, num_channels: int, num_groups: int = 32, eps: float = 1e-5, affine: bool = True) -> None:
        _check_common(num_channels, num_groups, eps, 0.0)
        super().__init__(num_groups, num_channels, eps=eps, affine=affine)


class _BatchNorm(nn.BatchNorm2d):
    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, affine=affine)


NORM_LAYERS: dict[str, Callable[..., nn.Module]] = {
    "agin": AGIN,
    "gin": GroupInstanceNorm,
    "in": _InstanceNorm,
    "gn": _GroupNorm,
    "bn": _BatchNorm,
}


def register_norm_layer(name: str, factory: Callable[..., nn.Module]) -> None:
    """Add a norm layer to the registry under ``name``; ``factory(num_channels, **kwargs)`` builds it."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"norm layer name must be a non-empty string, got {name!r}")
    NORM_LAYERS[name.lower()] = factory


def get_norm_layer(name_or_class: str | type[nn.Module] | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Look up a norm layer by name ("agin", "gin", "in", "gn", "bn") or pass a class through.

    Every returned factory takes the channel count first: ``get_norm_layer("gin")(64, num_groups=8)``.
    """
    if isinstance(name_or_class, str):
        key = name_or_class.lower()
        if key not in NORM_LAYERS:
            raise ValueError(f"unknown norm layer {name_or_class!r}; known: {', '.join(sorted(NORM_LAYERS))}")
        return NORM_LAYERS[key]
    if callable(name_or_class):
        return name_or_class
    raise ValueError(f"norm layer must be a name ({', '.join(sorted(NORM_LAYERS))}) or a class, got {name_or_class!r}")
