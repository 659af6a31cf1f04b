"""Image quality metrics for colorization results, in numpy.

Inputs are ``numpy`` arrays of shape ``(H, W, 3)`` or ``(H, W)``, either
``uint8`` or floating point in ``[0, data_range]``, or PIL images (converted
to arrays). Every metric returns a plain Python ``float``. The chroma recall
converts to CIELAB with :func:`agincolor.color.rgb_to_lab`.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
from PIL import Image

from .color import rgb_to_lab

__all__ = [
    "HUES", "RECALL_THRESHOLD", "chroma_recall", "chroma_recall_sums", "colorfulness", "psnr", "ssim",
]

ImageLike = Union[np.ndarray, Image.Image]

# SSIM constants from Wang et al. 2004, with the gaussian window used by the
# reference implementation: sigma 1.5 truncated at 3.5 sigma, i.e. 11 taps.
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5
_SSIM_RADIUS = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)
_SSIM_WIN_SIZE = 2 * _SSIM_RADIUS + 1


def _to_array(image: ImageLike, name: str) -> np.ndarray:
    """Turn a PIL image or array into a float64 array of shape (H, W) or (H, W, C).

    Raises:
        TypeError: if ``image`` is neither a numpy array nor a PIL image.
        ValueError: if the array is not of shape (H, W) or (H, W, 3).
    """
    if isinstance(image, Image.Image):
        # Palette, RGBA, CMYK... are reduced to the two layouts metrics accept.
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        array = np.asarray(image)
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise TypeError(
            f"{name} must be a numpy array or PIL image, got {type(image).__name__}"
        )
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"{name} must have shape (H, W, 3) or (H, W), got shape {array.shape}")
    return array.astype(np.float64, copy=False)


def _pair(pred: ImageLike, target: ImageLike) -> tuple[np.ndarray, np.ndarray]:
    a = _to_array(pred, "pred")
    b = _to_array(target, "target")
    if a.shape != b.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {a.shape} and target {b.shape}"
        )
    return a, b


def psnr(pred: ImageLike, target: ImageLike, data_range: float = 255.0) -> float:
    r"""Peak signal-to-noise ratio in dB, over all pixels and channels.

    .. math:: \mathrm{PSNR} = 10 \log_{10} \frac{R^2}{\mathrm{MSE}}

    Args:
        pred: image of shape ``(H, W, 3)`` or ``(H, W)``, values in ``[0, data_range]``.
        target: image of the same shape as ``pred``.
        data_range: the span ``R`` of possible values, 255 for 8-bit images.

    Returns:
        PSNR in dB; ``inf`` when the images are identical.

    Raises:
        ValueError: if the shapes differ.
    """
    a, b = _pair(pred, target)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(data_range**2 / mse)


def _gaussian_kernel() -> np.ndarray:
    offsets = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / _SSIM_SIGMA) ** 2)
    return kernel / kernel.sum()


def _filter_valid(stack: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation over the last two axes, keeping only full windows.

    ``stack`` has shape ``(N, H, W)``; the result has shape
    ``(N, H - k + 1, W - k + 1)`` with ``k = len(kernel)``.
    """
    k = kernel.shape[0]
    h, w = stack.shape[-2:]
    rows = sum(kernel[i] * stack[:, i : i + h - k + 1, :] for i in range(k))
    return sum(kernel[i] * rows[:, :, i : i + w - k + 1] for i in range(k))


def ssim(pred: ImageLike, target: ImageLike, data_range: float = 255.0) -> float:
    r"""Mean structural similarity index (Wang et al. 2004).

    Local statistics use an 11x11 gaussian window with sigma 1.5 and
    population (biased) variances, ``K1 = 0.01`` and ``K2 = 0.03``. SSIM is
    computed per channel and averaged, matching
    ``skimage.metrics.structural_similarity(..., channel_axis=-1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    Args:
        pred: image of shape ``(H, W, 3)`` or ``(H, W)``, values in
            ``[0, data_range]``, with ``H, W >= 11``.
        target: image of the same shape as ``pred``.
        data_range: the span of possible values, 255 for 8-bit images.

    Returns:
        Mean SSIM, in ``[-1, 1]``; 1 for identical images.

    Raises:
        ValueError: if the shapes differ or the image is smaller than 11x11.
    """
    a, b = _pair(pred, target)
    if min(a.shape[:2]) < _SSIM_WIN_SIZE:
        raise ValueError(
            f"ssim needs images of at least {_SSIM_WIN_SIZE}x{_SSIM_WIN_SIZE}, got shape {a.shape}"
        )
    if a.ndim == 2:
        a = a[:, :, None]
        b = b[:, :, None]
    # Channel-first so all channels and all five moments filter in one pass.
    x = np.moveaxis(a, -1, 0)
    y = np.moveaxis(b, -1, 0)
    channels = x.shape[0]
    moments = _filter_valid(np.concatenate([x, y, x * x, y * y, x * y]), _gaussian_kernel())
    mu_x, mu_y, mu_xx, mu_yy, mu_xy = np.split(moments, 5)

    var_x = mu_xx - mu_x * mu_x
    var_y = mu_yy - mu_y * mu_y
    cov_xy = mu_xy - mu_x * mu_y
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    ssim_map = numerator / denominator
    # skimage filters with reflected borders, then discards a border of
    # (win_size - 1) // 2 pixels before averaging. Those discarded pixels are
    # exactly the ones whose window reaches the padding, so filtering only
    # full windows gives the same mean without padding at all.
    per_channel = ssim_map.reshape(channels, -1).mean(axis=1)
    return float(per_channel.mean())


def colorfulness(image: ImageLike, absolute: bool = True) -> float:
    r"""Colorfulness metric of Hasler and Suesstrunk (2003).

    With ``rg = |R - G|`` and ``yb = |(R + G) / 2 - B|`` over all pixels,

    .. math:: M = \sqrt{\sigma_{rg}^2 + \sigma_{yb}^2}
              + 0.3 \sqrt{\mu_{rg}^2 + \mu_{yb}^2}

    using population standard deviations. The absolute values follow the widely used implementation
    that the project's protocol (DESIGN.md: ground truth of val/bsds500 scores 35.7) was measured
    with; ``absolute=False`` gives the paper's signed opponent channels (39.6 on the same photos).

    Args:
        image: RGB image of shape ``(H, W, 3)`` with values in ``[0, 255]``,
            or a grey image of shape ``(H, W)``.
        absolute: take absolute opponent values (default, the project's protocol).

    Returns:
        Colorfulness ``M >= 0``; 0 for any grey image.
    """
    array = _to_array(image, "image")
    if array.ndim == 2:
        return 0.0
    red, green, blue = array[..., 0], array[..., 1], array[..., 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    if absolute:
        rg, yb = abs(rg), abs(yb)
    sigma = math.sqrt(float(rg.std()) ** 2 + float(yb.std()) ** 2)
    mu = math.sqrt(float(rg.mean()) ** 2 + float(yb.mean()) ** 2)
    return sigma + 0.3 * mu


#: The hue regions of :func:`chroma_recall`: the CIELAB channel that defines each and the sign of its
#: hue on that channel (green is negative a*, blue negative b*).
HUES = {"green": (1, -1.0), "blue": (2, -1.0)}

#: How far (CIELAB units) a target pixel must lie towards a hue to count for its chroma recall.
RECALL_THRESHOLD = 10.0


def _lab_of(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:  # a gray image: no chroma
        array = np.repeat(array[..., None], 3, axis=-1)
    rgb = torch.from_numpy(np.clip(array / 255.0, 0.0, 1.0)).permute(2, 0, 1)
    return rgb_to_lab(rgb).numpy()


def chroma_recall_sums(
    pred: ImageLike, target: ImageLike, threshold: float = RECALL_THRESHOLD
) -> dict[str, tuple[float, float]]:
    """For each hue of :data:`HUES`: ``(sum of pred's channel, sum of target's channel)`` over the pixels
    where the target is clearly of that hue (its channel beyond ``threshold`` CIELAB units in the hue's
    direction), both signed towards the hue. Summed over many images, their ratio is the pooled
    :func:`chroma_recall` (how :mod:`agincolor.evaluate` reports it).

    Args:
        pred: image of shape ``(H, W, 3)`` or ``(H, W)`` (gray), values in ``[0, 255]``.
        target: image of the same shape.
        threshold: how far (CIELAB units, > 0) a target pixel must lie towards the hue to count.

    Raises:
        ValueError: if the shapes differ or ``threshold`` is not positive.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}")
    a, b = _pair(pred, target)
    return _recall_sums_of_lab(_lab_of(a), _lab_of(b), threshold)


def _recall_sums_of_lab(
    lab_pred: np.ndarray, lab_true: np.ndarray, threshold: float
) -> dict[str, tuple[float, float]]:
    """:func:`chroma_recall_sums` of two CIELAB images (3, H, W), for a caller that reuses one of them."""
    sums = {}
    for hue, (channel, sign) in HUES.items():
        true = sign * lab_true[channel]
        region = true > threshold
        sums[hue] = (float((sign * lab_pred[channel])[region].sum()), float(true[region].sum()))
    return sums


def chroma_recall(pred: ImageLike, target: ImageLike, hue: str = "green", threshold: float = RECALL_THRESHOLD) -> float:
    r"""How much of a hue the prediction restores where the target clearly has it.

    Over the pixels where the target lies more than ``threshold`` CIELAB units towards ``hue`` (green:
    :math:`a^* < -10`, mostly vegetation; blue: :math:`b^* < -10`, mostly sky and water), the ratio of the
    prediction's mean component in that direction to the target's:

    .. math:: R = \frac{\sum_{p \in S} s\, c_{pred}(p)}{\sum_{p \in S} s\, c_{true}(p)}

    1 means the hue is restored in full on average, 0 that it is absent (any gray image scores 0),
    a negative value that those pixels got the opposite hue (brown or red where the target is green).
    A number for the sepia wash that PSNR and colorfulness do not show: a brown image can be colourful.

    Args:
        pred: image of shape ``(H, W, 3)`` or ``(H, W)`` (gray), values in ``[0, 255]``.
        target: image of the same shape.
        hue: ``"green"`` or ``"blue"``.
        threshold: how far (CIELAB units, > 0) a target pixel must lie towards the hue to count.

    Returns:
        The ratio ``R``; ``nan`` when no target pixel has the hue.

    Raises:
        ValueError: for an unknown hue, different shapes or a non-positive threshold.
    """
    if hue not in HUES:
        raise ValueError(f"hue must be one of {', '.join(map(repr, HUES))}, got {hue!r}")
    got, want = chroma_recall_sums(pred, target, threshold)[hue]
    return got / want if want > 0 else float("nan")
