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

from ..color import (
    AB_BIN_SIZE,
    AB_LIMIT,
    ab_bin_centers,
    ab_bin_count,
    ab_bin_index,
    ab_from_bin_logits,
    lab_to_rgb,
    rgb_to_lab,
)
from ..discriminator import DiscriminatorOutput
from ..generator import AB_SCALE

__all__ = [
    "adversarial_loss",
    "discriminator_loss",
    "cycle_loss",
    "content_loss",
    "cam_generator_loss",
    "cam_source_loss",
    "cam_target_loss",
    "paired_loss",
    "soft_bin_targets",
    "decibel_error",
    "distill_loss",
    "PAIRED_LOSSES",
    "BIN_LOSSES",
    "AB_LOSSES",
    "ChromaRebalance",
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
PAIRED_LOSSES = ("rgb-l1", "chroma-l1", "chroma-l2", "ab-bins", "ab-huber", "ab-l2")

#: The paired forms whose generator output is per-pixel logits over ab bins rather than an image.
BIN_LOSSES = ("ab-bins",)

#: The paired forms whose generator predicts CIELAB a*, b* directly (``head="ab"``).
AB_LOSSES = ("ab-huber", "ab-l2")

#: Where the ab Huber loss turns from quadratic to linear, in CIELAB units.
AB_HUBER_DELTA = 5.0


def paired_loss(
    colorized: torch.Tensor,
    original: torch.Tensor,
    kind: str = "rgb-l1",
    pixel_weights: torch.Tensor | None = None,
    mean_weight: float = 0.0,
    soft_sigma: float = 0.0,
    decibel_weight: float = 0.0,
) -> torch.Tensor:
    """Our supervised addition (DESIGN.md): the error of G_g(gray(y)) against its colour original y.

    Both are (N, 3, H, W) in [-1, 1]. ``kind``:

    - ``"rgb-l1"``: L1 between the two images, as first described in DESIGN.md.
    - ``"chroma-l1"``, ``"chroma-l2"``: the error the Colorizer makes. Only the CIELAB ab of the output is
      kept; it is joined with y's own L, converted back to sRGB in [0, 1] and compared with y by L1, or by
      mean squared error (the quantity PSNR measures). The output's lightness gets no gradient, as it is
      discarded at inference.
    - ``"ab-bins"``: colour as classification (Zhang et al. 2016). ``colorized`` is then the generator's
      ``(N, Q, H, W)`` logits over the :func:`~agincolor.color.ab_bin_centers` grid (``Q`` = 484 bins of
      10x10 CIELAB units), and the loss is the cross-entropy against the bin of each pixel's true ab. It
      learns a distribution over colours instead of their average, so an unsure pixel is not pulled to a
      brown mean; the Colorizer decodes it with an annealed mean. ``mean_weight`` > 0 adds that many
      times the squared error of the distribution's plain mean (the temperature-1 decoding), in units of
      :data:`~agincolor.generator.AB_SCALE`: the cross-entropy alone never sees how far off the colour
      the Colorizer shows is, and the squared error is what PSNR measures. ``soft_sigma`` > 0 replaces
      the one bin of each pixel by a soft target (Zhang et al.'s soft encoding): the 3x3 bins around
      it, weighted by a Gaussian of ``soft_sigma`` CIELAB units of their centres' distance to the true
      ab (see :func:`soft_bin_targets`). Its mean lies near the true colour rather than on its bin's
      centre, and nearby colours are no longer scored as wrong as far ones. ``decibel_weight`` > 0 adds
      that many times the photos' mean chroma error in decibels, ``10 log10(1 + e)`` with ``e`` a photo's
      mean squared CIELAB ab distance between the plain mean and the truth (see :func:`decibel_error`):
      what PSNR averages, a photo's error on a log scale. Each photo pulls in inverse proportion to
      ``1 + e``, so halving a small error gains as much as halving a large one, and a nearly colourless
      photo counts as much as a vivid one, where the squared error of ``mean_weight`` is ruled by the
      photos with the largest errors.

    - ``"ab-huber"``, ``"ab-l2"``: ``colorized`` is a ``head="ab"`` generator's ``(N, 2, H, W)`` output,
      CIELAB a*, b* over :data:`~agincolor.generator.AB_SCALE`, compared with y's own ab by a Huber loss
      (quadratic within :data:`AB_HUBER_DELTA` CIELAB units, linear beyond, so that a few vivid outliers
      do not dominate) or by squared error, both in units of AB_SCALE. Lightness is never predicted.

    ``pixel_weights``, an optional ``(N, 1, H, W)`` map (from :class:`ChromaRebalance`), weights each
    pixel's error; the loss is then the weighted mean over pixels and channels.
    """
    if pixel_weights is not None and (
        pixel_weights.dim() != 4
        or pixel_weights.shape[1] != 1
        or pixel_weights.shape[0] != original.shape[0]
        or pixel_weights.shape[2:] != original.shape[2:]
    ):
        raise ValueError(
            f"pixel_weights must have shape (N, 1, H, W) = {(original.shape[0], 1, *original.shape[2:])}, "
            f"got {tuple(pixel_weights.shape)}"
        )
    if kind not in PAIRED_LOSSES:
        raise ValueError(f"unknown paired loss {kind!r}; choose one of {', '.join(PAIRED_LOSSES)}")
    if not mean_weight >= 0 or (mean_weight > 0 and kind not in BIN_LOSSES):
        raise ValueError(f"mean_weight must be >= 0, and above 0 only for ab-bins; got {mean_weight!r} with {kind!r}")
    if not soft_sigma >= 0 or (soft_sigma > 0 and kind not in BIN_LOSSES):
        raise ValueError(f"soft_sigma must be >= 0, and above 0 only for ab-bins; got {soft_sigma!r} with {kind!r}")
    if not decibel_weight >= 0 or (decibel_weight > 0 and kind not in BIN_LOSSES):
        raise ValueError(
            f"decibel_weight must be >= 0, and above 0 only for ab-bins; got {decibel_weight!r} with {kind!r}"
        )
    if kind == "rgb-l1":
        return _weighted_mean((colorized.float() - original.float()).abs(), pixel_weights)
    if kind == "ab-bins":
        bins = ab_bin_count() ** 2
        if colorized.dim() != 4 or colorized.shape[1] != bins or colorized.shape[2:] != original.shape[2:]:
            raise ValueError(
                f"the ab-bins loss needs logits of shape (N, {bins}, H, W) = "
                f"{(original.shape[0], bins, *original.shape[2:])}, got {tuple(colorized.shape)}"
            )
        truth = rgb_to_lab(((original.float() + 1) / 2).clamp(0, 1))[:, 1:]
        if soft_sigma > 0:
            index, weight = soft_bin_targets(truth, soft_sigma)
            log_p = bin_log_softmax(colorized.float()).gather(1, index)
            error = -(weight * log_p).sum(dim=1, keepdim=True)
        else:
            target = ab_bin_index(truth, AB_BIN_SIZE, AB_LIMIT)
            error = bin_cross_entropy(colorized.float(), target)
        loss = _weighted_mean(error, pixel_weights)
        if mean_weight > 0 or decibel_weight > 0:
            mean = ab_from_bin_logits(colorized.float(), ab_bin_centers(AB_BIN_SIZE, AB_LIMIT), 1.0)
        if mean_weight > 0:
            loss = loss + mean_weight * _weighted_mean(((mean - truth) / AB_SCALE).square(), pixel_weights)
        if decibel_weight > 0:
            loss = loss + decibel_weight * decibel_error(mean, truth, pixel_weights).mean()
        return loss
    if kind in AB_LOSSES:
        if colorized.dim() != 4 or colorized.shape[1] != 2 or colorized.shape[2:] != original.shape[2:]:
            raise ValueError(
                f"the {kind} loss needs ab of shape (N, 2, H, W) = {(original.shape[0], 2, *original.shape[2:])}, "
                f"got {tuple(colorized.shape)}"
            )
        target = rgb_to_lab((original.float() + 1) / 2)[:, 1:] / AB_SCALE
        if kind == "ab-l2":
            error = (colorized.float() - target).square()
        else:
            error = F.huber_loss(colorized.float(), target, reduction="none", delta=AB_HUBER_DELTA / AB_SCALE)
        return _weighted_mean(error, pixel_weights)
    pred = ((colorized.float() + 1) / 2).clamp(0, 1)
    truth = (original.float() + 1) / 2
    truth_lab = rgb_to_lab(truth)
    joined = lab_to_rgb(torch.cat([truth_lab[:, :1], rgb_to_lab(pred)[:, 1:]], dim=1), clip=True)
    diff = joined - truth
    return _weighted_mean(diff.square() if kind == "chroma-l2" else diff.abs(), pixel_weights)


def soft_bin_targets(
    ab: torch.Tensor, sigma: float, bin_size: float = AB_BIN_SIZE, limit: float = AB_LIMIT
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft ab-bin targets: ``(N, 2, H, W)`` CIELAB ab -> flat bin indices and weights, each ``(N, 9, H, W)``.

    The bin that holds each pixel's ab and its eight neighbours on the grid, each weighted by
    ``exp(-d^2 / (2 sigma^2))`` of the distance ``d`` from its centre to the ab, normalised to sum to 1.
    Neighbours off the grid get weight 0 (their index is clamped to a valid bin). As ``sigma`` falls
    towards 0 the target becomes the one bin of :func:`~agincolor.color.ab_bin_index`.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    bins = ab_bin_count(bin_size, limit)
    ab = ab.float().clamp(-limit, limit)
    home = ab_bin_index(ab, bin_size, limit)  # (N, H, W), the hard target
    steps = torch.tensor([-1, 0, 1], device=ab.device)
    da, db = torch.meshgrid(steps, steps, indexing="ij")
    rows = (home // bins).unsqueeze(1) + da.flatten().view(1, 9, 1, 1)  # (N, 9, H, W)
    cols = (home % bins).unsqueeze(1) + db.flatten().view(1, 9, 1, 1)
    inside = (rows >= 0) & (rows < bins) & (cols >= 0) & (cols < bins)
    index = rows.clamp(0, bins - 1) * bins + cols.clamp(0, bins - 1)
    centres = ab_bin_centers(bin_size, limit).to(ab.device)[index]  # (N, 9, H, W, 2)
    distance2 = (centres - ab.permute(0, 2, 3, 1).unsqueeze(1)).square().sum(dim=-1)
    # A softmax of the Gaussian's exponent: the same weights, without underflow when sigma is small.
    weight = torch.softmax((-distance2 / (2 * sigma**2)).masked_fill(~inside, float("-inf")), dim=1)
    return index, weight


def decibel_error(ab: torch.Tensor, truth: torch.Tensor, pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Each photo's chroma error in decibels: ``10 log10(1 + e)``, ``e`` the mean over its pixels (weighted
    by ``pixel_weights`` (N, 1, H, W) if given) of the squared CIELAB distance between ``ab`` and ``truth``,
    both (N, 2, H, W) in CIELAB units. Returns (N,).

    PSNR averages ``-10 log10`` of each photo's error, so doubling a photo's ``e`` costs the same 3 dB
    whether the photo was 2 units off or 20: its gradient is a squared error's divided by ``1 + e`` (and
    times ``10 / ln 10``). The 1 (one CIELAB unit squared) keeps an exact photo finite, as the
    evaluation's PSNR cap does.
    """
    distance = (ab.float() - truth.float()).square().sum(dim=1, keepdim=True)
    if pixel_weights is None:
        per_photo = distance.mean(dim=(1, 2, 3))
    else:
        w = pixel_weights.float()
        per_photo = (distance * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3)).clamp_min(1e-12)
    return 10 * torch.log10(1 + per_photo)


def distill_loss(logits: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """Knowledge distillation over ab bins: the mean over pixels of KL(teacher || student).

    ``logits`` (N, B, H, W) are the student's bin scores, ``teacher_probs`` (N, B, H, W) a teacher's
    distribution over the same bins (for instance the mean of several teachers' softmaxes). Its gradient
    is the cross-entropy's against those soft targets; the teacher's own entropy is subtracted so that the
    value is 0 when the student predicts exactly the teacher's distribution.
    """
    if logits.shape != teacher_probs.shape:
        raise ValueError(f"student scores {tuple(logits.shape)} and teacher distribution {tuple(teacher_probs.shape)} differ in shape")
    p = teacher_probs.float()
    log_q = bin_log_softmax(logits.float())
    return (p * (p.clamp_min(1e-12).log() - log_q)).sum(dim=1).mean()


def _bins_innermost(scores: torch.Tensor) -> bool:
    """Whether the bins of (N, B, H, W) scores lie next to each other in memory (channels-last), so
    each pixel's scores form one contiguous row."""
    return scores.is_contiguous(memory_format=torch.channels_last) and not scores.is_contiguous()


def bin_log_softmax(scores: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` of (N, B, H, W) bin scores over the bins (dim 1), in the scores' own memory layout.

    On channels-last scores (a channels-last generator's output) it runs over each pixel's contiguous row
    of bins instead of across strided memory, which PyTorch's CPU kernel would first copy to the other
    layout; the values are the same."""
    if _bins_innermost(scores):
        return F.log_softmax(scores.permute(0, 2, 3, 1), dim=-1).permute(0, 3, 1, 2)
    return F.log_softmax(scores, dim=1)


def bin_cross_entropy(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel cross-entropy (N, 1, H, W) of (N, B, H, W) bin scores against bin indices (N, H, W),
    without a change of memory layout for channels-last scores (see :func:`bin_log_softmax`)."""
    if _bins_innermost(scores):
        n, bins, h, w = scores.shape
        rows = scores.permute(0, 2, 3, 1).reshape(-1, bins)  # a view: channels-last memory is (N, H, W, B)
        return F.cross_entropy(rows, target.reshape(-1), reduction="none").view(n, 1, h, w)
    return F.cross_entropy(scores, target, reduction="none").unsqueeze(1)


def _weighted_mean(error: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return error.mean()
    weights = weights.float()
    return (error * weights).sum() / (weights.sum() * error.shape[1]).clamp_min(1e-12)


class ChromaRebalance:
    """Per-pixel weights that counter the pull of common colours towards a brown average.

    A regression loss trained on photos predicts, wherever the colour is uncertain, the mean of the
    plausible colours, and the commonest colours of photos are low-chroma browns and grays: the sepia
    wash. Zhang, Isola and Efros (Colorful Image Colorization, 2016) weight each pixel by the inverse
    frequency of its true colour; we do the same for the chroma regression. The CIELAB ab plane is cut
    into ``bin_size`` squares over ``[-limit, limit)``; the prior ``p`` is the share of training pixels in
    each bin, blurred by a Gaussian of ``sigma`` (in ab units), and the weight of bin ``q`` is
    ``((1 - mix) * p_q + mix / Q) ** -power`` (``Q`` the number of bins any pixel fell in), scaled so that
    the expected weight of a training pixel is 1. ``power`` 1 and ``mix`` 0.5 is the paper's choice; a
    smaller ``power`` rebalances more gently.

    Build it with :meth:`from_images` (a few thousand training photos are plenty) and call it on a batch
    of colour images in [-1, 1] to get their ``(N, 1, H, W)`` weight map for :func:`paired_loss`.
    """

    def __init__(self, weights: torch.Tensor, bin_size: float = AB_BIN_SIZE, limit: float = AB_LIMIT) -> None:
        bins = ab_bin_count(bin_size, limit)
        if weights.shape != (bins, bins):
            raise ValueError(f"weights must have shape ({bins}, {bins}) for bin_size {bin_size} and limit {limit}")
        self.weights = weights.float()
        self.bin_size = float(bin_size)
        self.limit = float(limit)

    @property
    def bins(self) -> int:
        return self.weights.shape[0]

    def bin_index(self, images: torch.Tensor) -> torch.Tensor:
        """Flat ab-bin index of every pixel of colour images ``(N, 3, H, W)`` in [-1, 1], as ``(N, H, W)`` longs."""
        return _ab_bin_index(images, self.bin_size, self.limit)

    @staticmethod
    def histogram(images: torch.Tensor, bin_size: float = AB_BIN_SIZE, limit: float = AB_LIMIT) -> torch.Tensor:
        """Pixel counts per ab bin of colour images ``(N, 3, H, W)`` in [-1, 1]."""
        bins = ab_bin_count(bin_size, limit)
        flat = _ab_bin_index(images, bin_size, limit).flatten()
        return torch.bincount(flat, minlength=bins * bins).reshape(bins, bins).double()

    @classmethod
    def from_histogram(
        cls,
        counts: torch.Tensor,
        bin_size: float = AB_BIN_SIZE,
        limit: float = AB_LIMIT,
        sigma: float = 5.0,
        mix: float = 0.5,
        power: float = 1.0,
    ) -> "ChromaRebalance":
        """Weights from per-bin pixel counts (see the class docstring for the formula)."""
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"mix must be in [0, 1], got {mix}")
        if power < 0:
            raise ValueError(f"power must be >= 0, got {power}")
        counts = counts.double()
        total = counts.sum()
        if total <= 0:
            raise ValueError("the histogram is empty: no pixels to estimate the colour prior from")
        share = counts / total
        prior = share
        if sigma > 0:
            radius = max(1, int(round(3 * sigma / bin_size)))
            offsets = torch.arange(-radius, radius + 1, dtype=torch.float64) * bin_size
            kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
            kernel = kernel / kernel.sum()
            blurred = F.conv2d(prior[None, None], (kernel[:, None] * kernel[None, :])[None, None], padding=radius)
            prior = blurred[0, 0] / blurred.sum()
        used = int((counts > 0).sum())
        weights = ((1 - mix) * prior + mix / used).pow(-power)
        weights = weights / (weights * share).sum()
        return cls(weights.float(), bin_size, limit)

    @classmethod
    def from_images(cls, images: Sequence[torch.Tensor] | torch.Tensor, **kwargs: float) -> "ChromaRebalance":
        """Weights from colour images in [-1, 1]: one ``(N, 3, H, W)`` tensor or an iterable of batches."""
        grid = {k: kwargs[k] for k in ("bin_size", "limit") if k in kwargs}
        if isinstance(images, torch.Tensor):
            images = [images]
        counts = sum(cls.histogram(batch, **grid) for batch in images)
        if not isinstance(counts, torch.Tensor):
            raise ValueError("no images to estimate the colour prior from")
        return cls.from_histogram(counts, **kwargs)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` weights for colour images ``(N, 3, H, W)`` in [-1, 1] (no gradient)."""
        with torch.no_grad():
            flat = self.weights.to(images.device).flatten()
            return flat[self.bin_index(images)].unsqueeze(1)


def _ab_bin_index(images: torch.Tensor, bin_size: float, limit: float) -> torch.Tensor:
    """Flat ab-bin index of every pixel of colour images (N, 3, H, W) in [-1, 1], as (N, H, W) longs."""
    ab = rgb_to_lab(((images.float() + 1) / 2).clamp(0, 1))[:, 1:]
    return ab_bin_index(ab, bin_size, limit)
