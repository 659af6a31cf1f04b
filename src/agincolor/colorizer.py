"""One-call colorization: ``Colorizer.from_pretrained().colorize(image)``.

The generator runs at a small working resolution; its output's CIELAB chroma (a, b) is upsampled to the
input's size and joined with the input's own lightness L (DESIGN.md, "luminance-exact inference"). The
result has the input's size and lightness at any resolution, and the network's cost does not grow with
the image: only a linear colour-space pass does, which runs in strips to bound memory.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any, NamedTuple, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn

from .color import (
    _RGB_TO_XYZ_NORM,
    _XYZ_NORM_TO_RGB,
    _cie_f,
    _cie_f_inv,
    ab_bin_centers,
    ab_bin_count,
    ab_from_bin_logits,
    lab_l_from_srgb,
    linear_to_srgb,
    rgb_to_gray,
    rgb_to_lab,
    srgb_to_linear,
)
from .generator import AB_SCALE, MIN_SIZE, Generator

__all__ = [
    "ARCHITECTURE",
    "DEFAULT_MODEL_DIR",
    "ColorizeResult",
    "Colorizer",
    "ImageInput",
    "ImageReadError",
    "open_image",
]

ARCHITECTURE = "agincolor.Generator"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "pretrained"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

ImageInput = Union[Image.Image, str, os.PathLike, np.ndarray, torch.Tensor]

# Bytes of working memory per output pixel (input copy, L, upsampled ab, output) plus strip temporaries.
_BYTES_PER_PIXEL = 32
_STRIP_PIXELS = 1 << 20
#: Annealed-mean temperature for models that predict ab bins (Zhang et al. 2016's choice).
DEFAULT_TEMPERATURE = 0.38
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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


class _Prepared(NamedTuple):
    """One image reduced to what colorization needs."""

    lightness: torch.Tensor  # (H, W) float32 CIELAB L* in [0, 100]
    gray: torch.Tensor  # (H, W) float32 luma in [0, 1], the network's input before resizing
    alpha: np.ndarray | torch.Tensor | None


class Colorizer(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="agincolor",
    tags=["image-colorization", "agincolor", "u-gat-it"],
    pipeline_tag="image-to-image",
):
    """A gray-to-colour generator with everything needed to colorize images of any size.

    Args:
        generator (dict, default None): keyword arguments of :class:`~agincolor.Generator` (None: its
            defaults). Stored in config.json, so a saved folder rebuilds the same network.
        working_size (int, default 256): the network runs on images resized to about this many pixels
            squared (aspect kept, each side at least 32); chroma is then upsampled to the input's size.
        saturation (float, default 1.0): scale applied to the predicted chroma (a, b) before it is joined
            with the input's lightness; below 1 gives more muted colours. ``colorize`` can override it.
        A generator with ``head="ab"`` predicts CIELAB a*, b* directly (see :class:`~agincolor.Generator`).
        ab_bins (dict, default None): for a generator with ``head="logits"`` only, which then predicts
            scores over a grid of CIELAB ab bins: ``{"bin_size": 10.0, "limit": 110.0}`` (see
            :func:`~agincolor.color.ab_bin_centers`); its ``out_channels`` must be the number of bins.
        temperature (float, default 0.38): with ``ab_bins``, the annealed-mean temperature that turns the
            predicted distribution into one colour per pixel (1: its mean; towards 0: its mode).
        architecture (str): must be ``"agincolor.Generator"``; a config for anything else is refused.
        license (str, default None): the weights' licence, an SPDX-style id of the Hub ("apache-2.0") or
            "other". Weights inherit the terms of the photos they were trained on, so there is no
            permissive default: None is written to a generated model card as "other".
        license_terms (str, default None): with "other", the terms in a few words (which data, which use);
            a generated card's ``license_name`` is their slug ("research use only": research-use-only).

    Load with :meth:`from_pretrained` (no argument: the model bundled in the package; a folder; or a Hub
    id), save with ``save_pretrained`` / ``push_to_hub`` (config.json + model.safetensors + model card).
    """

    def __init__(
        self,
        generator: dict[str, Any] | None = None,
        working_size: int = 256,
        saturation: float = 1.0,
        ab_bins: dict[str, float] | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        architecture: str = ARCHITECTURE,
        license: str | None = None,
        license_terms: str | None = None,
        **unexpected: Any,
    ) -> None:
        super().__init__()
        if unexpected:
            raise ValueError(f"Colorizer config has unknown keys: {', '.join(sorted(unexpected))}")
        if architecture != ARCHITECTURE:
            raise ValueError(
                f"config is for architecture {architecture!r}; agincolor's Colorizer loads only {ARCHITECTURE!r}"
            )
        if isinstance(working_size, bool) or not isinstance(working_size, int) or working_size < MIN_SIZE:
            raise ValueError(f"working_size must be an int >= {MIN_SIZE}, got {working_size!r}")
        _check_saturation(saturation)
        self.saturation = float(saturation)
        generator = dict(generator or {})
        if "pooling" in generator:
            generator["pooling"] = tuple(generator["pooling"])
        try:
            self.generator = Generator(**generator)
        except TypeError as err:
            raise ValueError(f"Colorizer config 'generator' has an invalid entry: {err}") from None
        if self.generator.in_channels not in (1, 3):
            raise ValueError(f"a Colorizer needs a generator with in_channels 1 or 3, got {self.generator.in_channels}")
        self.ab_bins = self._check_ab_bins(ab_bins, temperature)
        self.temperature = float(temperature)
        if self.ab_bins is not None:
            self.register_buffer("ab_centers", ab_bin_centers(**self.ab_bins), persistent=False)
        self.generator_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in generator.items()}
        self.working_size = working_size
        for name, value in (("license", license), ("license_terms", license_terms)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
        self.license = license
        self.license_terms = license_terms

    def generate_model_card(self, *args: Any, **kwargs: Any) -> Any:
        """The Hub mixin's model card, with this model's own licence (never a hard-coded one)."""
        card = super().generate_model_card(*args, **kwargs)
        card.data.license = self.license or "other"
        if card.data.license == "other":
            # The Hub wants a slug here; the terms themselves belong in the card's text.
            terms = self.license_terms or "terms of the training data"
            card.data.license_name = re.sub(r"[^a-z0-9]+", "-", terms.lower()).strip("-")
        return card

    def _check_ab_bins(self, ab_bins: dict[str, float] | None, temperature: float) -> dict[str, float] | None:
        """Validate the bin grid against the generator's head; returns it with float values (or None)."""
        head, out = self.generator.head_kind, self.generator.out_channels
        _check_temperature(temperature)
        if head == "ab":
            if ab_bins is not None:
                raise ValueError("ab_bins is only for a generator with head 'logits'; this one predicts ab directly")
            return None
        if head == "image":
            if ab_bins is not None:
                raise ValueError("ab_bins is only for a generator with head 'logits'; this one outputs an image")
            if out != 3:
                raise ValueError(f"a Colorizer needs a generator with out_channels 3, got {out}")
            return None
        if not isinstance(ab_bins, dict) or set(ab_bins) != {"bin_size", "limit"}:
            raise ValueError(
                f"a generator with head 'logits' needs ab_bins = {{'bin_size': ..., 'limit': ...}}, got {ab_bins!r}"
            )
        grid = {k: float(v) for k, v in ab_bins.items()}
        count = ab_bin_count(**grid) ** 2
        if out != count:
            raise ValueError(f"ab_bins {ab_bins} has {count} bins but the generator's out_channels is {out}")
        return grid

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        force_download: bool = False,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        **model_kwargs: Any,
    ) -> "Colorizer":
        """Load a Colorizer: the bundled default model (no argument), a local folder, or a Hub repo id.

        Only ``model.safetensors`` is ever read (no pickle). Loading is strict: a missing file, a corrupt
        safetensors file, missing or unexpected weights, a shape mismatch or a config for another
        architecture raise ``ValueError`` / ``FileNotFoundError`` naming the problem.
        """
        if pretrained_model_name_or_path is None:
            folder = DEFAULT_MODEL_DIR
            if not (folder / WEIGHTS_NAME).exists():
                raise FileNotFoundError(f"the bundled default model is missing from {folder}; reinstall agincolor")
        else:
            folder = cls._resolve(
                pretrained_model_name_or_path,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=local_files_only,
                token=token,
                force_download=force_download,
            )
        try:
            model = super().from_pretrained(folder, local_files_only=True, **model_kwargs)
        except json.JSONDecodeError as err:
            raise ValueError(f"{str(Path(folder) / CONFIG_NAME)!r} is not valid JSON: {err}") from None
        if device is not None or dtype is not None:
            model.to(device=device, dtype=dtype)
        return model

    @staticmethod
    def _resolve(name: str | os.PathLike[str], **hub: Any) -> Path:
        path = Path(name)
        if path.is_dir():
            for required in (CONFIG_NAME, WEIGHTS_NAME):
                if not (path / required).is_file():
                    raise FileNotFoundError(f"model folder {str(path)!r} has no {required}")
            return path
        text = str(name)
        if path.exists() or not _HUB_ID.match(text):
            raise FileNotFoundError(
                f"{text!r} is neither a model folder (with {CONFIG_NAME} and {WEIGHTS_NAME}) nor a Hub id 'org/name'"
            )
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        files = {}
        for required in (CONFIG_NAME, WEIGHTS_NAME):
            try:
                files[required] = Path(hf_hub_download(repo_id=text, filename=required, **hub))
            except LocalEntryNotFoundError:  # a subclass of EntryNotFoundError: it must come first
                raise FileNotFoundError(
                    f"{required} of Hub repo {text!r} is not in the local cache and downloading is off "
                    "(local_files_only=True or HF_HUB_OFFLINE)"
                ) from None
            except EntryNotFoundError:
                raise FileNotFoundError(f"Hub repo {text!r} has no {required}") from None
        if files[CONFIG_NAME].parent != files[WEIGHTS_NAME].parent:
            raise FileNotFoundError(f"Hub repo {text!r}: config and weights resolved to different revisions")
        return files[CONFIG_NAME].parent

    @classmethod
    def _from_pretrained(  # type: ignore[override]
        cls, *, model_id: str, map_location: str = "cpu", strict: bool = True, **kwargs: Any
    ) -> "Colorizer":
        for key in ("revision", "cache_dir", "force_download", "local_files_only", "token"):
            kwargs.pop(key, None)
        model = cls(**kwargs)
        model.load_weights(Path(model_id) / WEIGHTS_NAME, map_location=map_location)
        return model.eval()

    def load_weights(self, path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> None:
        """Load a safetensors file strictly into this model (every key present, no extra, same shapes)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
        try:
            state = load_file(str(path), device=str(map_location))
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise ValueError(f"{str(path)!r} is not a readable safetensors file: {err}") from None
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"weights in {str(path)!r} do not match the config: "
                + (f"missing {len(missing)} keys (e.g. {missing[:3]}) " if missing else "")
                + (f"unexpected {len(unexpected)} keys (e.g. {unexpected[:3]})" if unexpected else "")
            )
        wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items() if state[k].shape != v.shape]
        if wrong:
            raise ValueError(f"weights in {str(path)!r} have mismatched shapes: {'; '.join(wrong[:5])}")
        self.load_state_dict(state, strict=True)

    # ----------------------------------------------------------------------------------- inputs
    def _check_size(self, h: int, w: int) -> None:
        if h <= 0 or w <= 0:
            raise ValueError(f"image has zero size ({w}x{h})")
        need = h * w * _BYTES_PER_PIXEL
        available = _available_memory()
        if available is not None and need > available:
            raise MemoryError(
                f"a {w}x{h} image needs about {need / 2**30:.1f} GiB to colorize; only "
                f"{available / 2**30:.1f} GiB is available"
            )

    def _prepare_pil(self, image: Image.Image) -> _Prepared:
        image = ImageOps.exif_transpose(image)
        if image.mode in ("La", "RGBa"):
            image = _unpremultiply(image)
        w, h = image.size
        self._check_size(h, w)
        mode = image.mode
        alpha = None
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
            alpha = np.asarray(image.convert("RGBA").getchannel("A"))
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            arr = np.asarray(image, dtype=np.float64 if mode in ("I", "F") else np.float32)
            scale = 65535.0 if mode.startswith("I;16") or (mode == "I" and arr.max() > 255) else 255.0
            if mode == "F":
                scale = 1.0 if arr.max() <= 1.0 else 255.0
            gray = torch.from_numpy(np.clip(arr / scale, 0.0, 1.0).astype(np.float32))
            return _Prepared(_lightness_of_gray(gray), gray, alpha)
        if mode in ("1", "L", "LA"):
            u8 = torch.from_numpy(np.array(image.convert("L"), dtype=np.uint8))
            return _Prepared(_L_OF_GRAY_U8[u8.long()], u8.float() / 255.0, alpha)
        rgb = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8))
        return _prepare_rgb_u8(rgb, alpha)

    def _prepare_array(self, arr: np.ndarray) -> _Prepared:
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            raise ValueError(f"numpy images must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")
        h, w = arr.shape[:2]
        self._check_size(h, w)
        if arr.dtype.kind == "u" and arr.dtype.itemsize == 2 and not arr.dtype.isnative:
            arr = arr.astype(np.uint16)  # big-endian 16-bit data, as some TIFF readers return it
        if arr.dtype in (np.float16, np.float32, np.float64):
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            _check_unit_range(torch.from_numpy(arr), "numpy image")  # alpha included
        alpha = None
        if arr.ndim == 3 and arr.shape[2] == 4:
            alpha, arr = arr[:, :, 3].copy(), arr[:, :, :3]
        if arr.dtype == np.uint8:
            t = torch.from_numpy(np.ascontiguousarray(arr))
            if t.dim() == 2:
                return _Prepared(_L_OF_GRAY_U8[t.long()], t.float() / 255.0, alpha)
            return _prepare_rgb_u8(t, alpha)
        if arr.dtype == np.uint16:
            f = torch.from_numpy(arr.astype(np.float32) / 65535.0)
        elif arr.dtype == np.float32:
            f = torch.from_numpy(np.ascontiguousarray(arr))
        else:
            raise TypeError(f"unsupported numpy dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")
        if f.dim() == 2:
            return _Prepared(_lightness_of_gray(f), f, alpha)
        return _prepare_rgb_float(f.permute(2, 0, 1), alpha)

    def _prepare_tensor(self, t: torch.Tensor) -> _Prepared:
        if t.dim() != 3 or t.shape[0] not in (1, 3, 4):
            raise ValueError(f"image tensors must have shape (1|3|4, H, W), got {tuple(t.shape)}")
        self._check_size(t.shape[1], t.shape[2])
        t = t.detach().cpu()
        if t.is_floating_point():
            _check_unit_range(t.float(), "image tensor")
        elif t.dtype != torch.uint8:
            raise TypeError(f"unsupported tensor dtype {t.dtype}; use float in [0, 1] or uint8")
        alpha = None
        if t.shape[0] == 4:
            alpha, t = t[3:].clone(), t[:3]
        t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
        if t.shape[0] == 1:
            return _Prepared(_lightness_of_gray(t[0]), t[0], alpha)
        return _prepare_rgb_float(t, alpha)

    # ----------------------------------------------------------------------------------- running
    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) the network sees for an input of this size: about working_size**2 pixels,
        aspect kept, multiples of 4, each side at least 32."""
        scale = self.working_size / math.sqrt(height * width)

        def side(n: int) -> int:
            return max(MIN_SIZE, int(round(n * scale / 4)) * 4)

        return side(height), side(width)

    @torch.no_grad()
    def _chroma(
        self, grays: list[torch.Tensor], shape: tuple[int, int], temperature: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the generator on gray images resized to ``shape``; returns (ab (N, 2, h, w), heatmap)."""
        param = next(self.generator.parameters())
        batch = torch.stack(
            [F.interpolate(g[None, None], size=shape, mode="bilinear", align_corners=False, antialias=True)[0] for g in grays]
        ).to(device=param.device, dtype=param.dtype)
        x = batch * 2 - 1
        if self.generator.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        # Inference whatever mode the module is in: a batch-norm encoder uses its running statistics, so a
        # photo's colours never depend on the others in its batch, and colorizing never changes the model.
        was_training = self.generator.training
        self.generator.eval()
        try:
            out = self.generator(x.clamp(-1, 1))
        finally:
            self.generator.train(was_training)
        return self.chroma_of(out.image, temperature).cpu(), out.heatmap.float().cpu()

    def chroma_of(self, output: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """CIELAB ab ``(N, 2, H, W)`` (float32) of the generator's raw ``image`` output: the chroma of the
        colour image, or the annealed mean of the bin scores for an ``ab_bins`` model (at ``temperature``,
        default the model's own)."""
        if self.ab_bins is not None:
            t = self.temperature if temperature is None else temperature
            return ab_from_bin_logits(output.float(), self.ab_centers.float(), t)
        if self.generator.head_kind == "ab":
            return output.float() * AB_SCALE
        return rgb_to_lab(((output.float() + 1) / 2).clamp(0, 1))[:, 1:]

    def _colorize_prepared(
        self,
        items: list[_Prepared],
        batch_size: int,
        with_attention: bool,
        saturation: float,
        temperature: float | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Colorize prepared images; returns, per image, uint8 RGB (H, W, 3) and an optional heatmap (H, W)."""
        results: list[tuple[torch.Tensor, torch.Tensor | None] | None] = [None] * len(items)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(self.working_shape(*item.gray.shape), []).append(i)
        for shape, indices in groups.items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                ab, heat = self._chroma([items[i].gray for i in chunk], shape, temperature)
                if saturation != 1.0:
                    ab = ab * saturation
                for j, i in enumerate(chunk):
                    lightness = items[i].lightness
                    rgb = _join_lightness_and_chroma(lightness, ab[j])
                    attention = None
                    if with_attention:
                        attention = _normalised_heatmap(heat[j], lightness.shape)
                    results[i] = (rgb, attention)
        return results  # type: ignore[return-value]

    def colorize(
        self,
        image: ImageInput | Sequence[ImageInput],
        *,
        batch_size: int = 8,
        return_attention: bool = False,
        saturation: float | None = None,
        temperature: float | None = None,
    ) -> Any:
        """Colorize one image or a list of images; each comes back as the same kind it went in.

        Accepts a PIL image in any mode (L, LA, RGB, RGBA, P, I;16, CMYK, 1, ...), a file path, a numpy
        array (H, W), (H, W, 3) or (H, W, 4) (uint8, uint16, or float in [0, 1]), or a torch tensor
        (1|3|4, H, W) or (N, 1|3|4, H, W) (float in [0, 1] or uint8). Colour inputs are recoloured from
        their lightness. EXIF orientation is applied to PIL images and files; alpha is kept.

        Returns: a PIL RGB(A) image for PIL images and paths; a numpy (H, W, 3|4) array of the input's
        dtype; a tensor (3|4, H, W) or (N, 3|4, H, W) of the input's dtype and device; a list for a list.
        With ``return_attention=True`` each result is a :class:`ColorizeResult` (image, attention).
        ``saturation`` overrides the model's chroma scale for this call, and ``temperature`` the annealed-mean
        temperature of a model that predicts ab bins (``ab_bins`` in its config; an error for other models).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if saturation is None:
            saturation = self.saturation
        else:
            _check_saturation(saturation)
        if temperature is not None:
            _check_temperature(temperature)
            if self.ab_bins is None:
                raise ValueError("temperature applies only to a model that predicts ab bins; this one outputs an image")
        if isinstance(image, torch.Tensor) and image.dim() == 4:
            if image.shape[0] == 0:
                raise ValueError(f"cannot colorize an empty batch of shape {tuple(image.shape)}")
            batch = [self._prepare_tensor(t) for t in image]
            outputs = self._colorize_prepared(batch, batch_size, return_attention, saturation, temperature)
            stacked = torch.stack([_to_tensor_like(rgb, p.alpha, image) for (rgb, _), p in zip(outputs, batch)])
            if return_attention:
                heat = torch.stack([a for _, a in outputs])[:, None].to(image.device)  # type: ignore[misc]
                return ColorizeResult(stacked, heat)
            return stacked
        many = isinstance(image, (list, tuple))
        pairs = [self._prepare_one(im) for im in (image if many else [image])]  # type: ignore[union-attr]
        outputs = self._colorize_prepared([p for p, _ in pairs], batch_size, return_attention, saturation, temperature)
        finished = []
        for (rgb, attention), (prep, original) in zip(outputs, pairs):
            out = _to_kind(rgb, prep.alpha, original)
            if return_attention:
                out = ColorizeResult(out, _attention_to_kind(attention, original))
            finished.append(out)
        return finished if many else finished[0]

    def _prepare_one(self, image: ImageInput) -> tuple[_Prepared, Any]:
        """Returns the prepared image and what decides the output's kind (the loaded PIL image for paths)."""
        if isinstance(image, (str, os.PathLike)):
            image = open_image(image)
        if isinstance(image, Image.Image):
            return self._prepare_pil(image), image
        if isinstance(image, np.ndarray):
            return self._prepare_array(image), image
        if isinstance(image, torch.Tensor):
            return self._prepare_tensor(image), image
        raise TypeError(
            f"cannot colorize a {type(image).__name__}; pass a PIL image, a file path, a numpy array or a torch tensor"
        )

    def forward(self, x: torch.Tensor) -> Any:
        """The generator's forward on (N, C, H, W) images in [-1, 1] (for users who want raw outputs)."""
        return self.generator(x)


def _check_saturation(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 4:
        raise ValueError(f"saturation must be a number in [0, 4], got {value!r}")


def _check_temperature(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 10:
        raise ValueError(f"temperature must be a number in (0, 10], got {value!r}")


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image file; raises :class:`ImageReadError` naming the file otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"image file {str(p)!r} does not exist" if not p.exists() else f"{str(p)!r} is not a file")
    try:
        with Image.open(p) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot read image file {str(p)!r}: {err}") from None


# ------------------------------------------------------------------------------------ colour helpers
def _check_unit_range(t: torch.Tensor, what: str) -> None:
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"float {what} values must lie in [0, 1], got range [{lo:.3g}, {hi:.3g}]")


def _unpremultiply(image: Image.Image) -> Image.Image:
    """PIL's premultiplied-alpha modes (La, RGBa) as straight LA / RGBA (PIL converts neither to L or RGB)."""
    arr = np.asarray(image).astype(np.float32)
    alpha = arr[..., -1:]
    colour = np.where(alpha > 0, arr[..., :-1] * 255.0 / np.maximum(alpha, 1.0), 0.0)
    straight = np.concatenate([np.clip(np.round(colour), 0, 255), alpha], axis=-1).astype(np.uint8)
    return Image.fromarray(straight, mode="LA" if image.mode == "La" else "RGBA")


def _lightness_of_gray(v: torch.Tensor) -> torch.Tensor:
    """L* of neutral pixels with gamma-encoded value v in [0, 1] (R = G = B = v)."""
    return lab_l_from_srgb(v.clamp(0, 1)[None].expand(3, -1, -1))[0]


_L_OF_GRAY_U8 = _lightness_of_gray(torch.arange(256, dtype=torch.float64).div(255.0)[None]).float()[0]
_LINEAR_U8 = srgb_to_linear(torch.arange(256, dtype=torch.float64).div(255.0)[None, None].expand(3, 1, -1))[0, 0].float()
# The luminance row of the RGB -> XYZ matrix that lab_l_from_srgb uses, so both paths give the same L*.
_Y_WEIGHTS = tuple(float(v) for v in _RGB_TO_XYZ_NORM[1])
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # rgb_to_gray's, for the network's gray input


def _prepare_rgb_u8(rgb: torch.Tensor, alpha: Any) -> _Prepared:
    """(H, W, 3) uint8 -> L* via a 256-entry linearisation table, and the network's gray input."""
    idx = rgb.long()
    y = torch.zeros(rgb.shape[:2], dtype=torch.float32)
    gray = torch.zeros(rgb.shape[:2], dtype=torch.float32)
    for c, (wy, wg) in enumerate(zip(_Y_WEIGHTS, _LUMA_WEIGHTS)):
        y.add_(_LINEAR_U8[idx[..., c]], alpha=wy)
        gray.add_(rgb[..., c].float(), alpha=wg / 255.0)
    return _Prepared(116.0 * _cie_f(y) - 16.0, gray, alpha)


def _prepare_rgb_float(rgb: torch.Tensor, alpha: Any) -> _Prepared:
    """(3, H, W) float in [0, 1] -> L* and the network's gray input."""
    rgb = rgb.clamp(0, 1)
    return _Prepared(lab_l_from_srgb(rgb)[0], rgb_to_gray(rgb)[0], alpha)


# Lab (relative to white) -> linear sRGB, as 9 floats: applied channel by channel, which on the CPU is much
# faster than a generic matrix product over a (3, M) tensor.
_XYZ_TO_LINEAR = [[float(v) for v in row] for row in _XYZ_NORM_TO_RGB]
# Linear light quantised to 1/65535 maps to the nearest uint8 sRGB level; the quantisation moves the sRGB
# value by at most 0.03 of a level (the curve's steepest slope is 12.92), so this table is exact to rounding.
_LINEAR_TO_U8 = linear_to_srgb(torch.linspace(0, 1, 65536, dtype=torch.float64)[None, None].expand(3, 1, -1))[0, 0]
_LINEAR_TO_U8 = _LINEAR_TO_U8.mul(255).round().to(torch.uint8)


def _lab_to_linear(y: torch.Tensor, fy: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Linear sRGB (3, M) of Lab pixels given Y and f(Y) (from L) and chroma a, b of shape (M,)."""
    x = _cie_f_inv(fy + a / 500.0)
    z = _cie_f_inv(fy - b / 200.0)
    m = _XYZ_TO_LINEAR
    return torch.stack([m[i][0] * x + m[i][1] * y + m[i][2] * z for i in range(3)])


def _fit_gamut(lightness: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Linear sRGB (3, M) of Lab pixels; out-of-gamut pixels lose chroma, never lightness, until they fit.

    Lightness fixes Y; a neutral colour of any Y is inside the gamut, so a bisection on the chroma scale
    in [0, 1] converges. Eight halvings leave at most 1/256 of the chroma on the table.
    """
    fy = (lightness + 16.0) / 116.0
    y = _cie_f_inv(fy)
    rgb = _lab_to_linear(y, fy, a, b)
    outside = ((rgb < 0) | (rgb > 1)).any(dim=0).nonzero().squeeze(1)
    if outside.numel():
        sy, sfy, sa, sb = y[outside], fy[outside], a[outside], b[outside]
        lo = torch.zeros_like(sy)
        hi = torch.ones_like(sy)
        for _ in range(8):
            mid = (lo + hi) * 0.5
            t = _lab_to_linear(sy, sfy, sa * mid, sb * mid)
            ok = ((t >= 0) & (t <= 1)).all(dim=0)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
        rgb[:, outside] = _lab_to_linear(sy, sfy, sa * lo, sb * lo)
    return rgb.clamp_(0, 1)


def _join_lightness_and_chroma(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Join full-size L* (H, W) with working-size chroma (2, h, w); returns uint8 RGB (H, W, 3).

    Works through horizontal strips, so memory beyond the output stays bounded whatever the image size.
    """
    h, w = lightness.shape
    out = torch.empty((h, w, 3), dtype=torch.uint8)
    rows = max(1, _STRIP_PIXELS // max(1, w))
    ab = ab[None].float()
    sh, sw = ab.shape[-2:]
    # Bilinear sampling positions of align_corners=False resizing, in grid_sample's [-1, 1] coordinates.
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (sw / w) - 0.5
    grid_x = xs.div(max(sw - 1, 1)).mul(2).sub(1) if sw > 1 else torch.zeros_like(xs)
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        ys = (torch.arange(top, bottom, dtype=torch.float32) + 0.5) * (sh / h) - 0.5
        grid_y = ys.div(max(sh - 1, 1)).mul(2).sub(1) if sh > 1 else torch.zeros_like(ys)
        grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing="xy"), dim=-1)[None]
        strip_ab = F.grid_sample(ab, grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
        linear = _fit_gamut(lightness[top:bottom].reshape(-1), strip_ab[0].reshape(-1), strip_ab[1].reshape(-1))
        codes = _LINEAR_TO_U8[linear.mul_(65535.0).round_().long()]
        out[top:bottom] = codes.reshape(3, bottom - top, w).permute(1, 2, 0)
    return out


def _normalised_heatmap(heat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    heat = heat.float()
    heat = heat - heat.min()
    heat = heat / heat.max().clamp_min(1e-8)
    return F.interpolate(heat[None], size=size, mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)


def _to_kind(rgb: torch.Tensor, alpha: Any, original: Any) -> Any:
    """Turn uint8 (H, W, 3) RGB (+ alpha) into the kind of ``original``."""
    if isinstance(original, Image.Image):
        arr = rgb.numpy()
        if alpha is not None:
            return Image.fromarray(np.dstack([arr, np.asarray(alpha, dtype=np.uint8)]), mode="RGBA")
        return Image.fromarray(arr, mode="RGB")
    if isinstance(original, np.ndarray):
        arr = rgb.numpy()
        if original.dtype == np.uint8:
            out = arr
        elif original.dtype == np.uint16:
            out = arr.astype(np.uint16) * 257
        else:
            out = (arr.astype(np.float32) / 255.0).astype(original.dtype)
        if alpha is not None:
            out = np.dstack([out, np.asarray(alpha).astype(out.dtype)])
        return out
    return _to_tensor_like(rgb, alpha, original)


def _to_tensor_like(rgb: torch.Tensor, alpha: Any, original: torch.Tensor) -> torch.Tensor:
    t = rgb.permute(2, 0, 1)
    if original.dtype != torch.uint8:
        t = t.to(original.dtype) / 255.0
    if alpha is not None:
        t = torch.cat([t, torch.as_tensor(alpha).to(t.dtype).reshape(1, *t.shape[1:])], dim=0)
    return t.to(original.device)


def _attention_to_kind(attention: torch.Tensor | None, original: Any) -> Any:
    if attention is None:
        return None
    if isinstance(original, Image.Image):
        return Image.fromarray((attention.numpy() * 255).round().astype(np.uint8), mode="L")
    if isinstance(original, np.ndarray):
        return attention.numpy().astype(np.float32)
    return attention[None].to(original.device)
