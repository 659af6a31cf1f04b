"""Loss terms of section 3.2 (eqs. 4-9).

Every function takes the networks' outputs and returns a scalar tensor; weighting (eq. 9) is the
trainer's job. Eq. 4 is printed with the real and fake targets swapped relative to the least-squares GAN
it cites; we use the usual orientation: the discriminator pushes real scores to 1 and fake scores to 0,
the generator pushes fake scores to 1. Each discriminator scale's CAM logits are scored the same way
(eq. 8), as U-GAT-IT does.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..color import lab_to_rgb, rgb_to_lab
from ..discriminator import DiscriminatorOutput

__all__ = [
    "adversarial_loss",
    "discriminator_loss",
    "cycle_loss",
    "content_loss",
    "cam_generator_loss",
    "cam_source_loss",
    "cam_target_loss",
    "paired_loss",
    "PAIRED_LOSSES",
]


def _ls(x: torch.Tensor, target: float) -> torch.Tensor:
    x = x.float()
    return F.mse_loss(x, torch.full_like(x, target))


def adversarial_loss(fake: Sequence[DiscriminatorOutput]) -> torch.Tensor:
    """Generator side of eqs. 4 and 8: least squares pulling every scale's patch and CAM logits to 1."""
    return sum((_ls(o.patch_logits, 1.0) + _ls(o.cam_logits, 1.0) for o in fake), torch.zeros(()))


def discriminator_loss(real: Sequence[DiscriminatorOutput], fake: Sequence[DiscriminatorOutput]) -> torch.Tensor:
    """Discriminator side of eqs. 4 and 8: real patch and CAM logits to 1, fakes to 0, summed over scales."""
    total = torch.zeros(())
    for r, f in zip(real, fake):
        total = total + _ls(r.patch_logits, 1.0) + _ls(r.cam_logits, 1.0)
        total = total + _ls(f.patch_logits, 0.0) + _ls(f.cam_logits, 0.0)
    return total


def cycle_loss(reconstruction: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """One direction of eq. 5: L1 between G_c(G_g(x)) and x (or the reverse cycle)."""
    return F.l1_loss(reconstruction.float(), original.float())


def content_loss(identity: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Eq. 6, the identity term: L1 between G_g(y) and y for y already in the target domain."""
    return F.l1_loss(identity.float(), original.float())


def cam_source_loss(logits: torch.Tensor) -> torch.Tensor:
    """Eq. 7's first half: cross-entropy pulling A_g(x) to 1 for x from the generator's source domain.
    Returns 0 when the generator has no CAM (the ablation)."""
    if logits.numel() == 0:
        return torch.zeros((), device=logits.device)
    s = logits.float()
    return F.binary_cross_entropy_with_logits(s, torch.ones_like(s))


def cam_target_loss(logits: torch.Tensor) -> torch.Tensor:
    """Eq. 7's second half: cross-entropy pulling A_g(x) to 0 for x from the target domain."""
    if logits.numel() == 0:
        return torch.zeros((), device=logits.device)
    t = logits.float()
    return F.binary_cross_entropy_with_logits(t, torch.zeros_like(t))


def cam_generator_loss(source_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 7: binary cross-entropy teaching the generator's classifier A_g to tell its source domain (1)
    from its target domain (0). ``source_logits`` are A_g on x ~ X_g, ``target_logits`` on x ~ X_c.
    Returns 0 when the generator has no CAM (the ablation)."""
    return cam_source_loss(source_logits) + cam_target_loss(target_logits)


#: Forms of the paired term, see :func:`paired_loss`.
PAIRED_LOSSES = ("rgb-l1", "chroma-l1", "chroma-l2")


def paired_loss(colorized: torch.Tensor, original: torch.Tensor, kind: str = "rgb-l1") -> torch.Tensor:
    """Our supervised addition (DESIGN.md): the error of G_g(gray(y)) against its colour original y.

    Both are (N, 3, H, W) in [-1, 1]. ``kind``:

    - ``"rgb-l1"``: L1 between the two images, as first described in DESIGN.md.
    - ``"chroma-l1"``, ``"chroma-l2"``: the error the Colorizer makes. Only the CIELAB ab of the output is
      kept; it is joined with y's own L, converted back to sRGB in [0, 1] and compared with y by L1, or by
      mean squared error (the quantity PSNR measures). The output's lightness gets no gradient, as it is
      discarded at inference.
    """
    if kind == "rgb-l1":
        return F.l1_loss(colorized.float(), original.float())
    if kind not in PAIRED_LOSSES:
        raise ValueError(f"unknown paired loss {kind!r}; choose one of {', '.join(PAIRED_LOSSES)}")
    pred = ((colorized.float() + 1) / 2).clamp(0, 1)
    truth = (original.float() + 1) / 2
    truth_lab = rgb_to_lab(truth)
    joined = lab_to_rgb(torch.cat([truth_lab[:, :1], rgb_to_lab(pred)[:, 1:]], dim=1), clip=True)
    if kind == "chroma-l2":
        return F.mse_loss(joined, truth)
    return F.l1_loss(joined, truth)
