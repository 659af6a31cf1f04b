"""Image preparation and finishing shared by every runner (PyTorch, ONNX Runtime, video): numpy and PIL only.

A runner supplies one function, the network: gray images ``(N, 1, h, w)`` float32 in [0, 1] at the working
size in, CIELAB chroma ``(N, 2, h, w)`` and a CAM heatmap out. Everything around it lives here, as array
code that imports no torch:

* preparation: the input kinds (PIL images in any mode, files, numpy arrays), EXIF orientation, alpha,
  the input's CIELAB lightness L* at full size and the network's gray input (:func:`prepare_image`);
* the working size and the resizing of the gray input to it (:func:`working_shape`, :func:`resize_gray`);
* the join of the predicted chroma, upsampled, with the input's own L*, fitting out-of-gamut colours by
  lowering chroma, never lightness (:func:`join_lightness_and_chroma`), in strips to bound memory;
* the output in the input's kind (:func:`to_kind`), and the whole loop (:func:`colorize_images`);
* whether an input already has colour (:func:`colour_measure`, :func:`has_colour`).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "COLOUR_THRESHOLD",
    "MIN_SIZE",
    "ChromaFn",
    "ColorizeResult",
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "PreparedImage",
    "BRIGHTNESSES",
    "RESAMPLINGS",
    "check_brightness",
    "check_resample",
    "colorize_images",
    "colour_measure",
    "has_colour",
    "join_lightness_and_chroma",
    "keep_luma",
    "open_image",
    "prepare_array",
    "prepare_image",
    "resize_gray",
    "to_kind",
    "working_shape",
]

#: Suffixes of the image files a folder is searched for (by the CLI and the evaluation).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
#: Smallest height or width the network accepts (re-exported by :mod:`agincolor.generator`).
MIN_SIZE = 32

# Linear sRGB -> CIE XYZ (D65), Lindbloom's values; color.py builds its torch matrices from these rows too.
RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_RGB_TO_XYZ = np.array(RGB_TO_XYZ, dtype=np.float64)
# Relative to the XYZ of RGB (1, 1, 1), so sRGB white has a = b = 0 exactly.
_RGB_TO_XYZ_NORM = _RGB_TO_XYZ / _RGB_TO_XYZ.sum(axis=1, keepdims=True)
_XYZ_NORM_TO_RGB = np.linalg.inv(_RGB_TO_XYZ_NORM)
_Y_WEIGHTS = _RGB_TO_XYZ_NORM[1]
#: BT.601 luma weights of gamma-encoded RGB: PIL's convert("L"), the gray the network was trained on.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_DELTA = 6.0 / 29.0

# Bytes of working memory per output pixel (input copy, L, gray, output) plus strip temporaries.
_BYTES_PER_PIXEL = 32
# Pixels per strip of the join: its dozen float32 temporaries (3 MB at this size) stay in a core's L2
# cache; four times as many made the join of a 12-megapixel photo 1.3 to 1.45x slower on the project's CPU.
_STRIP_PIXELS = 1 << 16


class ImageReadError(ValueError):
    """An input file is missing, not an image, or cannot be decoded."""


class ColorizeResult(NamedTuple):
    """``colorize(..., return_attention=True)`` returns the image and the CAM heatmap at its size.

    image: the colorized image, of the input's kind.
    attention: heatmap normalised to [0, 1]: a PIL "L" image, an (H, W) float32 array, or an
        (1, H, W) / (N, 1, H, W) float tensor, matching the input's kind.
    """

    image: Any
    attention: Any


class PreparedImage(NamedTuple):
    """One input reduced to what colorization needs.

    lightness: (H, W) float32 CIELAB L* in [0, 100], the output's lightness.
    gray: (H, W) float32 luma in [0, 1], the network's input before resizing.
    alpha: (H, W) alpha of the input's own dtype, or None.
    colour: :func:`colour_measure` of a colour input (0.0 for one-channel inputs).
    source: the file it came from, if known (named in warnings).
    """

    lightness: np.ndarray
    gray: np.ndarray
    alpha: np.ndarray | None
    colour: float
    source: str | None = None


#: The network as a runner supplies it: gray (N, 1, h, w) float32 in [0, 1] -> (ab (N, 2, h, w) in CIELAB
#: units, heatmap (N, 1, h', w')), both float32 numpy arrays.
ChromaFn = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]


# ----------------------------------------------------------------------------------- colour maths
def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """sRGB transfer curve decoded: gamma-encoded [0, 1] -> linear light (IEC 61966-2-1)."""
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4)


def _cie_f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _DELTA**3, np.cbrt(t), t / (3 * _DELTA**2) + 4.0 / 29.0)


def _cie_f_inv(t: np.ndarray) -> np.ndarray:
    """f^-1 of CIELAB on a float32 array."""
    out = t * t
    out *= t
    np.copyto(out, (t - np.float32(4.0 / 29.0)) * np.float32(3 * _DELTA**2), where=t <= _DELTA)
    return out


def lightness_from_linear_y(y: np.ndarray) -> np.ndarray:
    """CIELAB L* of relative luminance Y in [0, 1]."""
    return (116.0 * _cie_f(y) - 16.0).astype(np.float32)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) gamma-encoded sRGB in [0, 1] -> (..., 3) CIELAB (D65), float64."""
    xyz = srgb_to_linear(np.asarray(rgb, dtype=np.float64)) @ _RGB_TO_XYZ_NORM.T
    f = _cie_f(xyz)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


_U8 = np.arange(256, dtype=np.float64) / 255.0
_LINEAR_U8 = srgb_to_linear(_U8)
_L_OF_GRAY_U8 = lightness_from_linear_y(_LINEAR_U8)
_GRAY_WEIGHTS_U8 = np.array(LUMA_WEIGHTS, dtype=np.float32) / 255.0
# Per-level contributions of each channel to Y, so the L* of uint8 RGB costs three table look-ups.
_Y_TABLES = [(_LINEAR_U8 * w).astype(np.float32) for w in _Y_WEIGHTS]
# Linear light quantised to 1/65535 maps to the nearest uint8 sRGB level; the quantisation moves the sRGB
# value by at most 0.03 of a level (the curve's steepest slope is 12.92), so this table is exact to rounding.
_LIN = np.linspace(0.0, 1.0, 65536)
_LINEAR_TO_SRGB_F64 = np.where(_LIN <= 0.04045 / 12.92, _LIN * 12.92, 1.055 * np.maximum(_LIN, 1e-12) ** (1 / 2.4) - 0.055)
_LINEAR_TO_U8 = np.round(255 * _LINEAR_TO_SRGB_F64).astype(np.uint8)
_LINEAR_TO_SRGB255 = (255 * _LINEAR_TO_SRGB_F64).astype(np.float32)  # for colours moved in sRGB before rounding
_LUMA_WEIGHTS_F32 = np.array(LUMA_WEIGHTS, dtype=np.float32)
_LUMA_STEP = _LUMA_WEIGHTS_F32 / _LUMA_WEIGHTS_F32.dot(_LUMA_WEIGHTS_F32)  # per unit of luma gap, along w
_XYZ_TO_LINEAR = _XYZ_NORM_TO_RGB.astype(np.float32)


# ----------------------------------------------------------------------------------- reading
def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image file; raises :class:`ImageReadError` naming the file otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"image file {str(p)!r} does not exist" if not p.exists() else f"{str(p)!r} is not a file")
    try:
        with Image.open(p) as im:
            im.load()
            image = im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot read image file {str(p)!r}: {err}") from None
    image.filename = str(p)  # type: ignore[attr-defined]  # as Image.open sets it, so warnings can name it
    return image


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_size(h: int, w: int) -> None:
    """Refuse an empty image, or one that would not fit in the memory available now (``MemoryError``)."""
    if h <= 0 or w <= 0:
        raise ValueError(f"image has zero size ({w}x{h})")
    need = h * w * _BYTES_PER_PIXEL
    available = _available_memory()
    if available is not None and need > available:
        raise MemoryError(
            f"a {w}x{h} image needs about {need / 2**30:.1f} GiB to colorize; only "
            f"{available / 2**30:.1f} GiB is available"
        )


def _check_unit_range(arr: np.ndarray, what: str) -> None:
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"float {what} values must lie in [0, 1], got range [{lo:.3g}, {hi:.3g}]")


def _unpremultiply(image: Image.Image) -> Image.Image:
    """PIL's premultiplied-alpha modes (La, RGBa) as straight LA / RGBA (PIL converts neither to L or RGB)."""
    arr = np.asarray(image).astype(np.float32)
    alpha = arr[..., -1:]
    colour = np.where(alpha > 0, arr[..., :-1] * 255.0 / np.maximum(alpha, 1.0), 0.0)
    straight = np.concatenate([np.clip(np.round(colour), 0, 255), alpha], axis=-1).astype(np.uint8)
    return Image.fromarray(straight, mode="LA" if image.mode == "La" else "RGBA")


# ----------------------------------------------------------------------------------- preparation
def _from_gray_u8(u8: np.ndarray, alpha: Any, source: str | None) -> PreparedImage:
    return PreparedImage(_L_OF_GRAY_U8[u8], u8.astype(np.float32) * np.float32(1 / 255), alpha, 0.0, source)


def _from_gray_float(gray: np.ndarray, alpha: Any, source: str | None) -> PreparedImage:
    gray = np.clip(gray, 0.0, 1.0).astype(np.float32)
    return PreparedImage(lightness_from_linear_y(srgb_to_linear(gray)), gray, alpha, 0.0, source)


def _from_rgb_u8(rgb: np.ndarray, alpha: Any, source: str | None) -> PreparedImage:
    """(H, W, 3) uint8: L* through per-level tables of Y, and the network's luma."""
    y = _Y_TABLES[0][rgb[..., 0]]
    y += _Y_TABLES[1][rgb[..., 1]]
    y += _Y_TABLES[2][rgb[..., 2]]
    gray = rgb[..., 0] * _GRAY_WEIGHTS_U8[0]
    gray += rgb[..., 1] * _GRAY_WEIGHTS_U8[1]
    gray += rgb[..., 2] * _GRAY_WEIGHTS_U8[2]
    return PreparedImage(lightness_from_linear_y(y), gray, alpha, colour_measure(rgb), source)


def _from_rgb_float(rgb: np.ndarray, alpha: Any, source: str | None) -> PreparedImage:
    """(H, W, 3) float in [0, 1]."""
    rgb = np.clip(rgb, 0.0, 1.0)
    linear = srgb_to_linear(rgb.astype(np.float32))
    y = linear @ _Y_WEIGHTS.astype(np.float32)
    gray = (rgb @ np.array(LUMA_WEIGHTS, dtype=np.float32)).astype(np.float32)
    return PreparedImage(lightness_from_linear_y(y), gray, alpha, colour_measure(rgb), source)


def prepare_pil(image: Image.Image) -> PreparedImage:
    """A PIL image in any mode: EXIF orientation applied, premultiplied alpha undone, alpha kept."""
    source = getattr(image, "filename", None) or None
    image = ImageOps.exif_transpose(image)
    if image.mode in ("La", "RGBa"):
        image = _unpremultiply(image)
    w, h = image.size
    check_size(h, w)
    mode = image.mode
    alpha = None
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64 if mode in ("I", "F") else np.float32)
        scale = 65535.0 if mode.startswith("I;16") or (mode == "I" and arr.max() > 255) else 255.0
        if mode == "F":
            scale = 1.0 if arr.max() <= 1.0 else 255.0
        return _from_gray_float(arr / scale, alpha, source)
    if mode in ("1", "L", "LA"):
        return _from_gray_u8(np.asarray(image.convert("L"), dtype=np.uint8), alpha, source)
    return _from_rgb_u8(np.asarray(image.convert("RGB"), dtype=np.uint8), alpha, source)


def prepare_array(arr: np.ndarray, what: str = "numpy image") -> PreparedImage:
    """A numpy image (H, W), (H, W, 1), (H, W, 3) or (H, W, 4): uint8, uint16 or float in [0, 1]."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"numpy images must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")
    h, w = arr.shape[:2]
    check_size(h, w)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2 and not arr.dtype.isnative:
        arr = arr.astype(np.uint16)  # big-endian 16-bit data, as some TIFF readers return it
    if arr.dtype in (np.float16, np.float32, np.float64):
        arr = np.asarray(arr, dtype=np.float32)
        _check_unit_range(arr, what)  # alpha included
    elif arr.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"unsupported numpy dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")
    alpha = None
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha, arr = arr[:, :, 3].copy(), arr[:, :, :3]
    if arr.dtype == np.uint8:
        arr = np.ascontiguousarray(arr)
        return _from_gray_u8(arr, alpha, None) if arr.ndim == 2 else _from_rgb_u8(arr, alpha, None)
    if arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / np.float32(65535)
    return _from_gray_float(arr, alpha, None) if arr.ndim == 2 else _from_rgb_float(arr, alpha, None)


def prepare_image(image: Any) -> tuple[PreparedImage, Any]:
    """Prepare a PIL image, a file path or a numpy array; returns it and what decides the output's kind
    (the opened PIL image for a path)."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    if isinstance(image, Image.Image):
        return prepare_pil(image), image
    if isinstance(image, np.ndarray):
        return prepare_array(image), image
    raise TypeError(
        f"cannot colorize a {type(image).__name__}; pass a PIL image, a file path, a numpy array or a torch tensor"
    )


# ----------------------------------------------------------------------------------- colour or gray
#: Threshold of :func:`colour_measure` above which :func:`has_colour` calls an image colour (CIELAB units).
COLOUR_THRESHOLD = 1.6
_MEASURE_SIDE = 64  # the measure works on a box-averaged thumbnail about this many pixels on its long side
_MIN_BLOCK = 4  # at least 4x4 pixels per thumbnail pixel, so noise averages out on small images too
_MEASURE_PERCENTILE = 95.0
_L_BIN = 1.0
_TONE_CHROMA = 2.0  # a band whose mean chroma is above this has a tone


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    """Box-average (H, W, 3) by an integer factor to about _MEASURE_SIDE on the long side (float64)."""
    h, w = rgb.shape[:2]
    k = max(_MIN_BLOCK, max(h, w) // _MEASURE_SIDE)
    kh, kw = min(k, h), min(k, w)
    if kh == kw == 1:
        return rgb.astype(np.float64)
    # Large blocks are averaged over every step-th pixel, at least 8x8 of them: as good against noise and far
    # cheaper on a 4000x3000 photo than reading all 12 million pixels.
    step = max(1, min(kh, kw) // 8)
    kh, kw = kh // step, kw // step
    sub = rgb[::step, ::step]
    hh, ww = sub.shape[0] // kh * kh, sub.shape[1] // kw * kw
    return sub[:hh, :ww].reshape(hh // kh, kh, ww // kw, kw, 3).mean(axis=(1, 3), dtype=np.float64)


def colour_measure(image: Any) -> float:
    """How much colour an image has that its lightness does not explain, in CIELAB units (0: none).

    The image is box-averaged to a thumbnail (about 64 pixels on its long side, which averages away
    sensor noise and JPEG chroma blocks) and converted to CIELAB. The mean chroma (a*, b*) of each 2-unit
    band of lightness L* is subtracted from every pixel in that band; the measure is the 95th percentile of
    what remains: sqrt(da*^2 + db*^2) in a band with no tone, and only the part across the band's hue
where the band has a tone (mean chroma above 2), because blurring a print mixes its tones along their hue. A toned monochrome print (sepia, cyanotype, selenium, yellowed paper,
    a scanner's cast) has one colour per lightness, so its measure is near 0 however strong the tone; a
    photo has different colours at the same lightness (sky and foliage, a face and its clothes, the reds
    and violets of a sunset) over more than a twentieth of its area. The limit of the definition: a photo
    whose colour is a function of its lightness (a single smooth gradient of one hue) cannot be told from
    a toned print, and counts as gray.

    Takes a PIL image, a file path or a numpy array (H, W[, 1|3|4]) of uint8, uint16 or float in [0, 1];
    one-channel images measure 0.
    """
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    if isinstance(image, Image.Image):
        image = ImageOps.exif_transpose(image)
        if image.mode in ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
            return 0.0
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"cannot measure the colour of a {type(image).__name__}; pass a PIL image, a file path or a numpy array"
        )
    arr = image
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        return 0.0
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"numpy images must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")
    rgb = arr[:, :, :3]
    if rgb.dtype == np.uint8:
        scale = 255.0
    elif rgb.dtype.kind == "u" and rgb.dtype.itemsize == 2:
        scale = 65535.0
    elif rgb.dtype.kind == "f":
        scale = 1.0
    else:
        raise TypeError(f"unsupported numpy dtype {rgb.dtype}; use uint8, uint16 or float in [0, 1]")
    thumb = np.clip(_thumbnail(rgb) / scale, 0.0, 1.0)
    lab = srgb_to_lab(thumb).reshape(-1, 3)
    band = np.clip((lab[:, 0] / _L_BIN).astype(np.int64), 0, int(100 / _L_BIN))
    count = np.bincount(band)
    mean_a = np.bincount(band, lab[:, 1]) / np.maximum(count, 1)
    mean_b = np.bincount(band, lab[:, 2]) / np.maximum(count, 1)
    da, db = lab[:, 1] - mean_a[band], lab[:, 2] - mean_b[band]
    residual = np.hypot(da, db)
    # Where the band has a tone, only the part of the difference across the tone's hue counts: blurring
    # mixes a print's tones and moves chroma along its hue, while a photo has other hues at that lightness.
    tone = np.hypot(mean_a, mean_b)[band]
    toned = tone > _TONE_CHROMA
    across = np.abs(da * mean_b[band] - db * mean_a[band]) / np.maximum(tone, 1e-9)
    residual[toned] = across[toned]
    return float(np.percentile(residual, _MEASURE_PERCENTILE))


def has_colour(image: Any, threshold: float = COLOUR_THRESHOLD) -> bool:
    """True when ``image`` is a colour photo, False for gray and toned monochrome (sepia, cyanotype...).

    ``colour_measure(image) > threshold``; see :func:`colour_measure` for the measure. The default
    threshold, 1.6 CIELAB units, calls at least 99% of the 500 BSDS500 validation photos colour and at
    least 99% of their gray, sepia-toned, cyanotype-toned and colour-cast versions gray
    (``scripts/colour_bar.py`` measures it). It leans towards colour, because mistaking a colour photo
    for gray destroys its colours, while the opposite only asks for ``--recolor``: toned prints saved as
    strong JPEG (quality 85) are called colour more often: 3% of the sepia and 44% of the cyanotype
    versions, whose JPEG chroma errors reach the threshold.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not threshold >= 0:
        raise ValueError(f"threshold must be a number >= 0, got {threshold!r}")
    return colour_measure(image) > threshold


# ----------------------------------------------------------------------------------- working size
def working_shape(height: int, width: int, working_size: int) -> tuple[int, int]:
    """The (h, w) the network sees for an input of this size: about working_size**2 pixels, aspect kept,
    multiples of 4, each side at least MIN_SIZE."""
    scale = working_size / math.sqrt(height * width)

    def side(n: int) -> int:
        return max(MIN_SIZE, int(round(n * scale / 4)) * 4)

    return side(height), side(width)


#: PIL's filters for resizing the gray input to the working size (the ``resample`` config key).
RESAMPLINGS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def check_resample(value: object) -> str:
    """``value`` if it names one of :data:`RESAMPLINGS`, else a ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in RESAMPLINGS:
        raise ValueError(f"resample must be one of {', '.join(map(repr, RESAMPLINGS))}, got {value!r}")
    return value


def _checked_property(name: str, check: Callable[[object], str], doc: str) -> property:
    """A runner attribute ``name`` kept as ``_name``, passed through ``check`` when set."""

    def get(runner: Any) -> str:
        return getattr(runner, "_" + name)

    def set_(runner: Any, value: str) -> None:
        setattr(runner, "_" + name, check(value))

    return property(get, set_, doc=doc)


def resample_property() -> property:
    """A runner's ``resample`` attribute (Colorizer, OnnxColorizer), checked by :func:`check_resample` when set."""
    doc = 'PIL\'s filter that resizes the gray input to the working size: "bilinear", "bicubic" or "lanczos".'
    return _checked_property("resample", check_resample, doc)


#: What of the input's brightness the output keeps exactly (``Colorizer.brightness``).
BRIGHTNESSES = {
    "lightness": "its CIELAB lightness L*, the luminance Y of a neutral gray of the input's values",
    "luma": "its BT.601 luma, the gray PIL's convert('L') makes of the output",
}


def check_brightness(value: object) -> str:
    """``value`` if it names one of :data:`BRIGHTNESSES`, else a ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in BRIGHTNESSES:
        raise ValueError(f"brightness must be one of {', '.join(map(repr, BRIGHTNESSES))}, got {value!r}")
    return value


def brightness_property() -> property:
    """A runner's ``brightness`` attribute (Colorizer, OnnxColorizer), checked by :func:`check_brightness`."""
    doc = 'What of the input\'s brightness the output keeps exactly: "lightness" (CIELAB L*) or "luma" (BT.601).'
    return _checked_property("brightness", check_brightness, doc)


def resize_gray(gray: np.ndarray, shape: tuple[int, int], resample: str = "bilinear") -> np.ndarray:
    """(H, W) float32 in [0, 1] -> shape (h, w) by PIL's filter ``resample`` (antialiased when shrinking).

    "bilinear" is the softest; "bicubic" and "lanczos" keep more fine detail and overshoot at edges, so
    the result is clipped to [0, 1]. Their wider kernels are slow on a large photo, so they first average
    blocks of pixels (PIL's ``reducing_gap`` 3: a whole-number reduction that leaves at least a factor 3
    to the filter; a photo less than 3 times the working size is filtered directly); "bilinear" always
    filters directly, as it did before the other two were offered.
    """
    h, w = shape
    if gray.shape == (h, w):
        return gray.astype(np.float32, copy=True)
    gap = None if check_resample(resample) == "bilinear" else 3.0
    small = Image.fromarray(gray.astype(np.float32), mode="F").resize((w, h), RESAMPLINGS[resample], reducing_gap=gap)
    return np.clip(np.asarray(small), 0.0, 1.0)


def _linear_taps(size_out: int, size_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of bilinear resizing (align_corners=False, edges clamped) along one axis."""
    pos = (np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    pos = np.clip(pos, 0.0, size_in - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, size_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def resize_bilinear(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(..., h, w) float32 -> (..., H, W) by separable bilinear interpolation (for upsampling)."""
    (r0, r1, rt), (c0, c1, ct) = _linear_taps(size[0], x.shape[-2]), _linear_taps(size[1], x.shape[-1])
    cols = x[..., c0] * (1 - ct) + x[..., c1] * ct
    return cols[..., r0, :] * (1 - rt)[:, None] + cols[..., r1, :] * rt[:, None]


# ----------------------------------------------------------------------------------- the join
def _lab_to_linear(y: np.ndarray, fy: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Linear sRGB (3, M) of Lab pixels given Y, f(Y) and chroma a, b, all (M,) float32."""
    x = _cie_f_inv(fy + a * np.float32(1 / 500))
    z = _cie_f_inv(fy - b * np.float32(1 / 200))
    m = _XYZ_TO_LINEAR
    out = np.empty((3, y.shape[0]), dtype=np.float32)
    for i in range(3):
        np.multiply(x, m[i, 0], out=out[i])
        out[i] += m[i, 1] * y
        out[i] += m[i, 2] * z
    return out


def _fit_gamut(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Linear sRGB (3, M) of Lab pixels; out-of-gamut pixels lose chroma, never lightness, until they fit.

    Lightness fixes Y; a neutral colour of any Y is inside the gamut, so a bisection on the chroma scale
    in [0, 1] converges. Eight halvings leave at most 1/256 of the chroma on the table.
    """
    fy = lightness * np.float32(1 / 116) + np.float32(16 / 116)
    y = _cie_f_inv(fy)
    rgb = _lab_to_linear(y, fy, a, b)
    outside = np.flatnonzero(((rgb < 0) | (rgb > 1)).any(axis=0))
    if outside.size:
        sy, sfy, sa, sb = y[outside], fy[outside], a[outside], b[outside]
        lo = np.zeros_like(sy)
        hi = np.ones_like(sy)
        for _ in range(8):
            mid = (lo + hi) * np.float32(0.5)
            t = _lab_to_linear(sy, sfy, sa * mid, sb * mid)
            ok = ((t >= 0) & (t <= 1)).all(axis=0)
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        rgb[:, outside] = _lab_to_linear(sy, sfy, sa * lo, sb * lo)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def keep_luma(rgb: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """Move gamma-encoded sRGB colours (3, M) in [0, 1] to the nearest ones of BT.601 luma ``luma`` (M,).

    Nearest in sRGB, where PSNR measures: each colour moves along the luma weights ``w`` by
    ``(luma - w . rgb) / (w . w)``, onto the plane of colours with that luma. When that leaves the gamut,
    the colour moves towards the neutral gray of the same luma (which the weights, summing to 1, keep on
    the plane) until it fits: it loses chroma, never luma. A photo's own colours lie on its gray's plane,
    so the first move brings an estimate of them no further from them, and nearer unless it was on the
    plane already. Returns a new float32 (3, M) array in [0, 1].
    """
    return _keep_luma_(np.array(rgb, dtype=np.float32), np.asarray(luma, dtype=np.float32))


def _keep_luma_(rgb: np.ndarray, luma: np.ndarray, top: float = 1.0) -> np.ndarray:
    """:func:`keep_luma` in place on a float32 (3, M) array, both on the scale [0, ``top``] (the join works
    on [0, 255], ready to round)."""
    gap = luma - _LUMA_WEIGHTS_F32 @ rgb
    rgb += _LUMA_STEP[:, None] * gap
    outside = np.flatnonzero((rgb.min(axis=0) < 0) | (rgb.max(axis=0) > top))
    if outside.size:
        neutral = luma[outside]
        away = rgb[:, outside] - neutral
        room = np.where(away > 0, top - neutral, neutral)  # how far each channel may go from the neutral, that way
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(np.abs(away) > room, room / np.abs(away), np.float32(1)).min(axis=0)
        rgb[:, outside] = np.clip(neutral + away * scale, 0.0, top)
    return rgb


def join_lightness_and_chroma(lightness: np.ndarray, ab: np.ndarray, luma: np.ndarray | None = None) -> np.ndarray:
    """Join full-size L* (H, W) with working-size chroma (2, h, w); returns uint8 RGB (H, W, 3).

    The chroma is upsampled bilinearly (align_corners=False, edges clamped). Works through horizontal
    strips, so memory beyond the output stays bounded whatever the image size. With ``luma`` (H, W) in
    [0, 1], the input's BT.601 luma, each joined colour is then moved to the nearest of that luma
    (:func:`keep_luma`): PIL's ``convert("L")`` of the output gives back the input's gray, to rounding.
    """
    h, w = lightness.shape
    ab = np.asarray(ab, dtype=np.float32)
    sh, sw = ab.shape[-2:]
    out = np.empty((h, w, 3), dtype=np.uint8)
    r0, r1, rt = _linear_taps(h, sh)
    c0, c1, ct = _linear_taps(w, sw)
    cols = ab[..., c0] * (1 - ct) + ab[..., c1] * ct  # (2, sh, W): chroma resized along the rows first
    rows = max(1, _STRIP_PIXELS // max(1, w))
    codes_buffer = np.empty((3, rows * w), dtype=np.uint16)
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        t = rt[top:bottom, None]
        strip = cols[:, r0[top:bottom]] * (1 - t) + cols[:, r1[top:bottom]] * t
        linear = _fit_gamut(lightness[top:bottom].reshape(-1), strip[0].reshape(-1), strip[1].reshape(-1))
        linear *= np.float32(65535)
        codes = np.add(linear, np.float32(0.5), out=codes_buffer[:, : linear.shape[1]], casting="unsafe")
        dest = out[top:bottom].reshape(-1, 3)  # a view: the strip's pixels, channels last
        if luma is None:
            np.take(_LINEAR_TO_U8, codes.T, out=dest, mode="clip")  # every code is in the table
        else:
            levels = luma[top:bottom].reshape(-1) * np.float32(255)
            rgb = _keep_luma_(np.take(_LINEAR_TO_SRGB255, codes), levels, 255.0)
            for channel in range(3):  # rounded: [0, 255.5) truncated; each channel's row read contiguously, not via rgb.T
                np.add(rgb[channel], np.float32(0.5), out=dest[:, channel], casting="unsafe")
    return out


def normalised_heatmap(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A heatmap (h', w') scaled to [0, 1] and resized bilinearly to ``size``; float32 (H, W)."""
    heat = np.asarray(heat, dtype=np.float32)
    heat = heat - heat.min()
    heat = heat / max(float(heat.max()), 1e-8)
    return np.clip(resize_bilinear(heat, size), 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------- outputs
def to_kind(rgb: np.ndarray, alpha: Any, original: Any) -> Any:
    """uint8 (H, W, 3) RGB (+ alpha) as the kind of ``original``: PIL RGB(A), or a numpy array of its dtype."""
    if isinstance(original, Image.Image):
        if alpha is not None:
            return Image.fromarray(np.dstack([rgb, np.asarray(alpha, dtype=np.uint8)]), mode="RGBA")
        return Image.fromarray(rgb, mode="RGB")
    if isinstance(original, np.ndarray):
        if original.dtype == np.uint8:
            out = rgb
        elif original.dtype == np.uint16:
            out = rgb.astype(np.uint16) * 257
        else:
            out = (rgb.astype(np.float32) / 255.0).astype(original.dtype)
        if alpha is not None:
            out = np.dstack([out, np.asarray(alpha).astype(out.dtype)])
        return out
    raise TypeError(f"cannot return a {type(original).__name__}")


def attention_to_kind(attention: np.ndarray | None, original: Any) -> Any:
    """A [0, 1] heatmap as a PIL "L" image for PIL inputs, else a float32 (H, W) array."""
    if attention is None:
        return None
    if isinstance(original, Image.Image):
        return Image.fromarray((attention * 255).round().astype(np.uint8), mode="L")
    return attention.astype(np.float32)


# ----------------------------------------------------------------------------------- the loop
def warn_if_colour(item: PreparedImage, index: int | None = None) -> None:
    """A ``UserWarning`` for an input that already has colour (it is recoloured from its lightness)."""
    if item.colour <= COLOUR_THRESHOLD:
        return
    name = repr(item.source) if item.source else ("the image" if index is None else f"image {index}")
    warnings.warn(
        f"{name} already has colour (colour_measure {item.colour:.1f} > {COLOUR_THRESHOLD:g}); its colours are "
        "replaced by ones predicted from its lightness",
        UserWarning,
        stacklevel=4,
    )


def colorize_prepared(
    items: Sequence[PreparedImage],
    chroma: ChromaFn,
    *,
    working_size: int,
    batch_size: int,
    with_attention: bool,
    saturation: float,
    resample: str = "bilinear",
    brightness: str = "lightness",
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Colorize prepared images: per image, uint8 RGB (H, W, 3) and an optional [0, 1] heatmap (H, W).

    Images of the same working shape share a forward of up to ``batch_size``; each gray input is resized
    to that shape by the filter ``resample`` (:func:`resize_gray`). The output keeps the input's CIELAB
    lightness, or with ``brightness`` "luma" its BT.601 luma (:func:`join_lightness_and_chroma`).
    """
    keep = check_brightness(brightness) == "luma"
    results: list[Any] = [None] * len(items)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(working_shape(*item.gray.shape, working_size), []).append(i)
    for shape, indices in groups.items():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = np.stack([resize_gray(items[i].gray, shape, resample) for i in chunk])[:, None]
            ab, heat = chroma(batch)
            ab = np.asarray(ab, dtype=np.float32)
            if saturation != 1.0:
                ab = ab * np.float32(saturation)
            for j, i in enumerate(chunk):
                lightness = items[i].lightness
                rgb = join_lightness_and_chroma(lightness, ab[j], items[i].gray if keep else None)
                attention = normalised_heatmap(heat[j][0], lightness.shape) if with_attention else None
                results[i] = (rgb, attention)
    return results


def colorize_images(
    image: Any,
    chroma: ChromaFn,
    *,
    working_size: int,
    batch_size: int,
    return_attention: bool,
    saturation: float,
    resample: str = "bilinear",
    brightness: str = "lightness",
    prepare: Callable[[Any], tuple[PreparedImage, Any]] = prepare_image,
    finish: Callable[[np.ndarray, Any, Any], Any] = to_kind,
    finish_attention: Callable[[np.ndarray | None, Any], Any] = attention_to_kind,
    result_type: Callable[[Any, Any], Any] = ColorizeResult,
) -> Any:
    """One image or a list, each prepared, colorized by ``chroma`` and returned as the kind it came in.

    A runner passes its network as ``chroma`` and, for input kinds of its own, its own ``prepare`` and
    ``finish`` (which fall back to :func:`prepare_image` and :func:`to_kind`). Inputs that already have
    colour are colorized all the same, with a ``UserWarning`` naming them.
    """
    many = isinstance(image, (list, tuple))
    images = list(image) if many else [image]
    pairs = [prepare(im) for im in images]
    for k, (item, _) in enumerate(pairs):
        warn_if_colour(item, k if many else None)
    outputs = colorize_prepared(
        [p for p, _ in pairs],
        chroma,
        working_size=working_size,
        batch_size=batch_size,
        with_attention=return_attention,
        saturation=saturation,
        resample=resample,
        brightness=brightness,
    )
    finished = []
    for (rgb, attention), (item, original) in zip(outputs, pairs):
        out = finish(rgb, item.alpha, original)
        if return_attention:
            out = result_type(out, finish_attention(attention, original))
        finished.append(out)
    return finished if many else finished[0]
