"""Differentiable colour-space conversions on torch tensors.

All functions take channel-first images of shape ``(*, 3, H, W)`` (any number
of leading batch dimensions) and compute in the dtype of their input, so that
float64 inputs give float64 precision and gradients flow through every
operation.

Conventions:

* RGB is sRGB (IEC 61966-2-1) with a D65 white point, values in ``[0, 1]``.
* CIELAB is relative to the D65 white, ``L`` in ``[0, 100]`` and ``a``, ``b``
  roughly in ``[-128, 127]``.
"""

from __future__ import annotations

import torch

from .image_processor import LUMA_WEIGHTS, RGB_TO_XYZ

__all__ = [
    "AB_BIN_SIZE",
    "AB_LIMIT",
    "ab_bin_centers",
    "ab_bin_count",
    "ab_bin_index",
    "ab_from_bin_logits",
    "ab_from_bin_logits_srgb_mean",
    "bin_srgb_table",
    "lab_l_from_srgb",
    "lab_to_rgb",
    "linear_to_srgb",
    "rgb_to_gray",
    "rgb_to_lab",
    "srgb_to_linear",
]

# Linear sRGB -> CIE XYZ (D65), the matrix derived from the sRGB primaries and
# white chromaticities (Lindbloom's precise values); one definition, shared with the numpy runner code.
_RGB_TO_XYZ = torch.tensor(RGB_TO_XYZ, dtype=torch.float64)

# The reference white is taken as the XYZ of RGB (1, 1, 1) rather than as the
# rounded published D65 values (0.95047, 1.0, 1.08883); the two agree to 1e-7,
# and this choice makes sRGB white map to exactly a = b = 0.
_WHITE_XYZ = _RGB_TO_XYZ.sum(dim=1)

# Folding the white normalisation into the matrix saves a division per pixel.
_RGB_TO_XYZ_NORM = _RGB_TO_XYZ / _WHITE_XYZ[:, None]
# Inverted once in float64 so that the round trip is accurate to float64
# precision whatever the dtype later used.
_XYZ_NORM_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ_NORM)

# sRGB transfer-curve constants (IEC 61966-2-1).
_SRGB_THRESHOLD = 0.04045
_LINEAR_THRESHOLD = 0.04045 / 12.92
_SRGB_SLOPE = 12.92
_SRGB_GAMMA = 2.4
_SRGB_OFFSET = 0.055

# CIE f(t) constants, written with 6/29 so both branches meet exactly.
_DELTA = 6.0 / 29.0
_DELTA_CUBE = _DELTA**3
_F_SLOPE = 1.0 / (3.0 * _DELTA**2)
_F_OFFSET = 4.0 / 29.0


def _check_image(image: object, name: str) -> None:
    """Validate that ``image`` is a floating tensor of shape ``(*, 3, H, W)``.

    Args:
        image: the object to check.
        name: the argument name used in error messages.

    Raises:
        TypeError: if ``image`` is not a tensor or not of a floating dtype.
        ValueError: if ``image`` has fewer than 3 dims or not 3 channels at dim -3.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must have a floating point dtype, got {image.dtype}")
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(
            f"{name} must have shape (*, 3, H, W), got shape {tuple(image.shape)}"
        )


def _matrix_apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix to the channel dimension (-3) of ``image``."""
    m = matrix.to(device=image.device, dtype=image.dtype)
    return torch.einsum("ij,...jhw->...ihw", m, image)


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    # The clamp keeps the unused power branch away from negative bases, whose
    # NaN gradients would otherwise leak through torch.where.
    shifted = (x.clamp(min=_SRGB_THRESHOLD) + _SRGB_OFFSET) / (1.0 + _SRGB_OFFSET)
    power = shifted**_SRGB_GAMMA
    return torch.where(x <= _SRGB_THRESHOLD, x / _SRGB_SLOPE, power)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    # Clamped for the same reason as in _srgb_to_linear; also avoids the
    # infinite derivative of x ** (1 / 2.4) at 0.
    encoded = x.clamp(min=_LINEAR_THRESHOLD) ** (1.0 / _SRGB_GAMMA)
    power = (1.0 + _SRGB_OFFSET) * encoded - _SRGB_OFFSET
    return torch.where(x <= _LINEAR_THRESHOLD, x * _SRGB_SLOPE, power)


def _cie_f(t: torch.Tensor) -> torch.Tensor:
    # Cube root has an infinite slope at 0; the clamp keeps it finite.
    cube_root = t.clamp(min=_DELTA_CUBE) ** (1.0 / 3.0)
    return torch.where(t > _DELTA_CUBE, cube_root, t * _F_SLOPE + _F_OFFSET)


def _cie_f_inv(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _DELTA, t**3, (t - _F_OFFSET) / _F_SLOPE)


def srgb_to_linear(image: torch.Tensor) -> torch.Tensor:
    r"""Decode gamma-encoded sRGB values to linear light.

    Uses the IEC 61966-2-1 piecewise curve: ``x / 12.92`` for ``x <= 0.04045``
    and ``((x + 0.055) / 1.055) ** 2.4`` above.

    Args:
        image: sRGB image of shape :math:`(*, 3, H, W)`, values in ``[0, 1]``.

    Returns:
        Linear RGB of shape :math:`(*, 3, H, W)`, values in ``[0, 1]``.

    Example:
        >>> srgb_to_linear(torch.ones(1, 3, 2, 2)).allclose(torch.ones(1, 3, 2, 2))
        True
    """
    _check_image(image, "image")
    return _srgb_to_linear(image)


def linear_to_srgb(image: torch.Tensor) -> torch.Tensor:
    r"""Encode linear-light RGB with the sRGB transfer curve.

    Inverse of :func:`srgb_to_linear`: ``12.92 * x`` for
    ``x <= 0.04045 / 12.92`` and ``1.055 * x ** (1 / 2.4) - 0.055`` above.

    Args:
        image: linear RGB image of shape :math:`(*, 3, H, W)`, values in ``[0, 1]``.

    Returns:
        sRGB image of shape :math:`(*, 3, H, W)`, values in ``[0, 1]``.
    """
    _check_image(image, "image")
    return _linear_to_srgb(image)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    r"""Convert an sRGB image to CIELAB (D65 white).

    Args:
        image: sRGB image of shape :math:`(*, 3, H, W)`, values in ``[0, 1]``.

    Returns:
        Lab image of shape :math:`(*, 3, H, W)`: ``L`` in ``[0, 100]``, ``a``
        and ``b`` roughly in ``[-128, 127]``.

    Example:
        >>> lab = rgb_to_lab(torch.ones(1, 3, 1, 1))
        >>> [round(v, 6) for v in lab.flatten().tolist()]
        [100.0, 0.0, 0.0]
    """
    _check_image(image, "image")
    xyz = _matrix_apply(_RGB_TO_XYZ_NORM, _srgb_to_linear(image))
    fx, fy, fz = _cie_f(xyz).unbind(dim=-3)
    lightness = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack([lightness, a, b], dim=-3)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    r"""Convert a CIELAB image (D65 white) to sRGB.

    Args:
        lab: Lab image of shape :math:`(*, 3, H, W)`: ``L`` in ``[0, 100]``,
            ``a`` and ``b`` roughly in ``[-128, 127]``.
        clip: clamp the result to ``[0, 1]``. Lab colours outside the sRGB
            gamut otherwise give values below 0 or above 1.

    Returns:
        sRGB image of shape :math:`(*, 3, H, W)`, values in ``[0, 1]`` when
        ``clip`` is true.
    """
    _check_image(lab, "lab")
    lightness, a, b = lab.unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0
    xyz = _cie_f_inv(torch.stack([fx, fy, fz], dim=-3))
    rgb = _linear_to_srgb(_matrix_apply(_XYZ_NORM_TO_RGB, xyz))
    if clip:
        rgb = rgb.clamp(0.0, 1.0)
    return rgb


def rgb_to_gray(image: torch.Tensor) -> torch.Tensor:
    r"""Convert an sRGB image to grey with ITU-R 601 luma weights.

    The weights ``0.299, 0.587, 0.114`` are applied to the gamma-encoded
    values, as PIL's ``Image.convert("L")`` does, so a colour photo converted
    here looks like the greyscale inputs the model sees at inference time.

    Args:
        image: sRGB image of shape :math:`(*, 3, H, W)`, values in ``[0, 1]``.

    Returns:
        Grey image of shape :math:`(*, 1, H, W)`, values in ``[0, 1]``.
    """
    _check_image(image, "image")
    weights = torch.tensor(LUMA_WEIGHTS, dtype=image.dtype, device=image.device)
    return (image * weights.view(3, 1, 1)).sum(dim=-3, keepdim=True)


def lab_l_from_srgb(image: torch.Tensor) -> torch.Tensor:
    r"""Compute only the CIELAB lightness ``L*`` of an sRGB image.

    Cheaper than :func:`rgb_to_lab` when the chroma channels are not needed:
    only the luminance ``Y = 0.2126729 R + 0.7151522 G + 0.0721750 B`` of the
    linear RGB is formed, then ``L* = 116 f(Y) - 16``.

    Args:
        image: sRGB image of shape :math:`(*, 3, H, W)`, values in ``[0, 1]``.

    Returns:
        Lightness of shape :math:`(*, 1, H, W)`, values in ``[0, 100]``.
    """
    _check_image(image, "image")
    # Same normalised row as rgb_to_lab uses, so both give the same L*.
    weights = _RGB_TO_XYZ_NORM[1].to(device=image.device, dtype=image.dtype)
    luminance = (_srgb_to_linear(image) * weights.view(3, 1, 1)).sum(dim=-3, keepdim=True)
    return 116.0 * _cie_f(luminance) - 16.0


# ------------------------------------------------------------------------------ quantised chroma
#: Default grid of the quantised ab plane: squares of this side (CIELAB units) ...
AB_BIN_SIZE = 10.0
#: ... over [-AB_LIMIT, AB_LIMIT) on each axis, which holds every sRGB colour's a and b.
AB_LIMIT = 110.0


def ab_bin_count(bin_size: float = AB_BIN_SIZE, limit: float = AB_LIMIT) -> int:
    """Bins per axis of the ab grid (``2 * limit / bin_size``, which must be a whole number)."""
    if not bin_size > 0 or not limit > 0:
        raise ValueError(f"bin_size and limit must be > 0, got {bin_size} and {limit}")
    count = 2 * limit / bin_size
    if abs(count - round(count)) > 1e-6:
        raise ValueError(f"2 * limit / bin_size must be a whole number, got 2 * {limit} / {bin_size}")
    return int(round(count))


def ab_bin_index(ab: torch.Tensor, bin_size: float = AB_BIN_SIZE, limit: float = AB_LIMIT) -> torch.Tensor:
    """Flat bin index ``ia * bins + ib`` of each (a, b) pair: ``(*, 2, H, W)`` -> ``(*, H, W)`` longs.

    Values outside the grid fall into its border bins.
    """
    if ab.dim() < 3 or ab.shape[-3] != 2:
        raise ValueError(f"expected ab of shape (*, 2, H, W), got {tuple(ab.shape)}")
    bins = ab_bin_count(bin_size, limit)
    idx = ((ab + limit) / bin_size).floor().long().clamp(0, bins - 1)
    return idx[..., 0, :, :] * bins + idx[..., 1, :, :]


def ab_bin_centers(bin_size: float = AB_BIN_SIZE, limit: float = AB_LIMIT) -> torch.Tensor:
    """The (a, b) centre of every bin, ``(bins * bins, 2)`` float32, in :func:`ab_bin_index` order."""
    bins = ab_bin_count(bin_size, limit)
    axis = torch.arange(bins, dtype=torch.float64) * bin_size - limit + bin_size / 2
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], dim=1).float()


def ab_from_bin_logits(logits: torch.Tensor, centers: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Chroma from per-pixel scores over ab bins: ``(N, Q, H, W)`` logits -> ``(N, 2, H, W)`` ab.

    The annealed mean of Zhang et al. 2016: the mean of the bin centres under
    ``softmax(logits / temperature)``. Temperature 1 gives the plain mean of the predicted
    distribution; lower values move towards its mode (more saturated, less averaged colour).
    """
    sums, total = _tempered_sums(logits, centers, temperature, centers.t())
    return (sums / total).reshape(logits.shape[0], 2, *logits.shape[2:])


def _tempered_sums(
    logits: torch.Tensor, centers: torch.Tensor, temperature: float | torch.Tensor, table: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of ``table`` (R, Q), one value per bin, summed per pixel with weights the numerators of
    ``softmax(logits / temperature)``: ``(N, R, H*W)``, and those weights' sum ``(N, 1, H*W)`` (divide the
    first by the second for the softmax-weighted mean). Both come from one matrix product, the sum from
    a row of ones added to the table: torch's softmax over dim 1 of a 4-d tensor is slow under
    onnxruntime, and only the sums a caller keeps need dividing. Computes in float32 (float64 for float64
    logits). Checks the logits' shape against ``centers`` and the temperature."""
    if logits.dim() != 4 or logits.shape[1] != centers.shape[0]:
        raise ValueError(
            f"expected logits of shape (N, {centers.shape[0]}, H, W) for {centers.shape[0]} bins, "
            f"got {tuple(logits.shape)}"
        )
    # A 0-d tensor temperature (an input of an exported ONNX graph) is not checked: it has no value yet.
    if not isinstance(temperature, torch.Tensor) and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n, q, h, w = logits.shape
    scores = (logits if logits.dtype == torch.float64 else logits.float()) / temperature  # a new tensor
    shift = scores.amax(dim=1, keepdim=True)
    # In place on that copy, unless autograd needs the scores kept.
    numerators = (scores - shift).exp() if scores.requires_grad else scores.sub_(shift).exp_()
    ones = torch.ones(1, q, device=numerators.device, dtype=numerators.dtype)
    rows = torch.cat([table.to(device=numerators.device, dtype=numerators.dtype), ones])
    sums = rows @ numerators.reshape(n, q, h * w)
    return sums[:, :-1], sums[:, -1:]


#: Lightness levels (0, 5, ..., 100) at which :func:`ab_from_bin_logits_srgb_mean` tabulates the bins' colours.
SRGB_MEAN_LEVELS = 21


def ab_from_bin_logits_srgb_mean(
    logits: torch.Tensor,
    centers: torch.Tensor,
    lightness: torch.Tensor,
    temperature: float | torch.Tensor = 1.0,
    levels: int = SRGB_MEAN_LEVELS,
    table: torch.Tensor | None = None,
) -> torch.Tensor:
    """Chroma from per-pixel scores over ab bins, by the mean sRGB colour of the bins.

    Each bin's centre is taken as a colour at the pixel's own lightness ``L*`` (``(N, 1, H, W)``, the gray
    input's), converted to sRGB (clipped to the gamut), and averaged under ``softmax(logits /
    temperature)``; the result is the ab of that mean colour. Where :func:`ab_from_bin_logits` averages
    the centres' a and b, this averages what the eye and a PSNR see: the mean sRGB colour is the one with
    the least expected squared sRGB error under the predicted distribution. Colours out of gamut at that
    lightness (a saturated blue on a bright pixel) count as the in-gamut colour they would be shown as.

    The bins' sRGB colours are tabulated at ``levels`` evenly spaced lightnesses from 0 to 100 and
    interpolated linearly between the two nearest (21 levels: within 1.5 ab units of converting every bin
    at every pixel, 0.1 on average; a just-noticeable difference is about 2.3), so the cost is one
    ``(3 * levels + 1, Q) x (Q, H*W)`` matrix product per image. ``table``, if given, is that table as
    :func:`bin_srgb_table` makes it for ``centers`` and ``levels`` (a caller decoding many images keeps
    it instead of rebuilding it each call).
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an int >= 2, got {levels!r}")
    if table is None:
        table = bin_srgb_table(centers.to(logits.device), levels)
    elif table.shape != (3 * levels, centers.shape[0]):
        raise ValueError(
            f"expected a table of shape {(3 * levels, centers.shape[0])} for {levels} levels and "
            f"{centers.shape[0]} bins, got {tuple(table.shape)}"
        )
    # Every level's weighted sums of the bins' R, G, B; only the two levels each pixel needs are divided.
    sums, total = _tempered_sums(logits.float(), centers, temperature, table)
    n, _, h, w = logits.shape
    if lightness.shape != (n, 1, h, w):
        raise ValueError(f"expected lightness of shape {(n, 1, h, w)}, got {tuple(lightness.shape)}")
    per_level = sums.reshape(n, levels, 3, h * w)
    position = (lightness.float().reshape(n, 1, 1, h * w) * ((levels - 1) / 100.0)).clamp(0, levels - 1)
    below = position.floor().clamp(max=levels - 2)
    weight = (position - below)[:, 0]
    index = below.long().expand(n, 1, 3, h * w)
    rgb = per_level.gather(1, index)[:, 0] * (1 - weight) + per_level.gather(1, index + 1)[:, 0] * weight
    rgb = rgb / total
    return rgb_to_lab(rgb.reshape(n, 3, h, w))[:, 1:]


def bin_srgb_table(centers: torch.Tensor, levels: int = SRGB_MEAN_LEVELS) -> torch.Tensor:
    """sRGB of every bin centre ``(Q, 2)`` at each of ``levels`` lightnesses from 0 to 100 (clipped to the
    gamut): ``(3 * levels, Q)`` float32, rows ``3k .. 3k+2`` level ``k``'s R, G, B. The table
    :func:`ab_from_bin_logits_srgb_mean` interpolates."""
    q = centers.shape[0]
    lightness = torch.linspace(0, 100, levels, dtype=torch.float64, device=centers.device)
    lab = torch.cat([lightness[:, None, None].expand(levels, q, 1), centers.double()[None].expand(levels, q, 2)], dim=2)
    rgb = lab_to_rgb(lab.permute(2, 0, 1))  # (3, levels, Q)
    return rgb.permute(1, 0, 2).reshape(levels * 3, q).float()
