"""One-call colorization: ``Colorizer.from_pretrained().colorize(image)``.

The generator runs at a small working resolution; its output's CIELAB chroma (a, b) is upsampled to the
input's size and joined with the input's own lightness L (DESIGN.md, "luminance-exact inference"). The
result has the input's size and lightness at any resolution, and the network's cost does not grow with
the image: only a linear colour-space pass does, which runs in strips to bound memory. That pass and the
preparation of every input kind are :mod:`agincolor.image_processor`'s array code, which the ONNX Runtime
runner (:mod:`agincolor.onnx`) shares; this module holds what needs torch: the model, its loading and
torch tensor inputs.
"""

from __future__ import annotations

import json
import numbers
import os
import re
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import torch
from huggingface_hub import PyTorchModelHubMixin
from PIL import Image
from torch import nn

from . import image_processor as ip
from ._video_methods import VideoMethods
from .color import (
    ab_bin_centers,
    ab_bin_count,
    ab_from_bin_logits,
    ab_from_bin_logits_srgb_mean,
    bin_srgb_table,
    lab_l_from_srgb,
    rgb_to_lab,
)
from .generator import AB_SCALE, MIN_SIZE, Generator
from .image_processor import ColorizeResult, ImageReadError, open_image

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

#: Annealed-mean temperature for models that predict ab bins (Zhang et al. 2016's choice).
DEFAULT_TEMPERATURE = 0.38
#: Ways an ab-bins model's distribution becomes one colour per pixel (the ``decoding`` config key).
DECODINGS = ("ab-mean", "srgb-mean")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class Colorizer(
    nn.Module,
    VideoMethods,
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
        decoding (str, default "ab-mean"): with ``ab_bins``, what is averaged under that tempered
            distribution: ``"ab-mean"`` the bins' a and b (Zhang et al. 2016), ``"srgb-mean"`` their sRGB
            colours at each pixel's lightness (see :func:`~agincolor.color.ab_from_bin_logits_srgb_mean`).
        resample (str, default "bilinear"): PIL's filter that resizes the gray input to the working size:
            "bilinear", "bicubic" or "lanczos" (sharper in that order). A model's colours depend on how
            sharp its input is, so a model ships the filter it was chosen with.
        brightness (str, default "lightness"): what of the input's brightness the output keeps exactly:
            "lightness", its CIELAB L* (the chroma is joined with it), or "luma", its BT.601 luma, the
            gray PIL's ``convert("L")`` makes (each joined colour then moves to the nearest of that luma,
            :func:`agincolor.image_processor.keep_luma`), so the output's gray is the input, to rounding.
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
        decoding: str = "ab-mean",
        resample: str = "bilinear",
        brightness: str = "lightness",
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
        self.decoding = decoding
        if self.ab_bins is not None:
            self.register_buffer("ab_centers", ab_bin_centers(**self.ab_bins), persistent=False)
            # The bins' sRGB colours that the "srgb-mean" decoding interpolates, made once, not per image.
            self.register_buffer("srgb_table", bin_srgb_table(self.ab_centers), persistent=False)
        self.generator_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in generator.items()}
        self.working_size = working_size
        self.resample = resample
        self.brightness = brightness
        for name, value in (("license", license), ("license_terms", license_terms)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
        self.license = license
        self.license_terms = license_terms

    @property
    def decoding(self) -> str:
        """How an ``ab_bins`` model's distribution becomes one colour per pixel: "ab-mean" or "srgb-mean"."""
        return self._decoding

    @decoding.setter
    def decoding(self, value: str) -> None:
        if value not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(map(repr, DECODINGS))}, got {value!r}")
        if value != "ab-mean" and self.ab_bins is None:
            raise ValueError(f"decoding {value!r} is only for a model that predicts ab bins (ab_bins in its config)")
        self._decoding = value

    resample = ip.resample_property()
    brightness = ip.brightness_property()

    def current_config(self) -> dict[str, Any]:
        """The config that rebuilds this model as it is now: ``working_size``, ``saturation``,
        ``temperature``, ``decoding``, ``resample`` and ``brightness`` changed after loading included. ``save_pretrained``
        writes it."""
        return dict(
            generator=self.generator_config,
            working_size=self.working_size,
            saturation=self.saturation,
            ab_bins=self.ab_bins,
            temperature=self.temperature,
            decoding=self.decoding,
            resample=self.resample,
            brightness=self.brightness,
            architecture=ARCHITECTURE,
            license=self.license,
            license_terms=self.license_terms,
        )

    def save_pretrained(self, save_directory: str | os.PathLike[str], *, config: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """The Hub mixin's ``save_pretrained`` (config.json, model.safetensors, model card; ``push_to_hub``
        too), whose config.json is :meth:`current_config` unless ``config`` is given: a setting changed
        after loading (``colorizer.temperature = 1.0``) is saved, not the one the model was built with."""
        return super().save_pretrained(save_directory, config=self.current_config() if config is None else config, **kwargs)

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

    # ----------------------------------------------------------------------------------- running
    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) the network sees for an input of this size: about working_size**2 pixels,
        aspect kept, multiples of 4, each side at least 32."""
        return ip.working_shape(height, width, self.working_size)

    def gray_to_chroma(
        self, gray: torch.Tensor, temperature: float | torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network as runners see it: gray (N, 1, h, w) in [0, 1] -> CIELAB ab (N, 2, h, w) float32 and the
        CAM heatmap (N, 1, h', w'). This is also the graph :func:`agincolor.export.export_onnx` writes."""
        x = (gray.to(next(self.generator.parameters()).dtype) * 2 - 1).clamp(-1, 1)
        if self.generator.in_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        out = self.generator(x)
        return self.chroma_of(out.image, temperature, gray=gray), out.heatmap.float()

    @torch.no_grad()
    def _chroma(self, gray: np.ndarray, temperature: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The network for :func:`~agincolor.image_processor.colorize_images`, on float32 numpy arrays."""
        # Inference whatever mode the module is in: a batch-norm encoder uses its running statistics, so a
        # photo's colours never depend on the others in its batch, and colorizing never changes the model.
        was_training = self.generator.training
        self.generator.eval()
        try:
            device = next(self.generator.parameters()).device
            ab, heat = self.gray_to_chroma(torch.from_numpy(np.array(gray, dtype=np.float32)).to(device), temperature)
        finally:
            self.generator.train(was_training)
        return ab.cpu().numpy(), heat.cpu().numpy()

    def chroma_of(
        self,
        output: torch.Tensor,
        temperature: float | torch.Tensor | None = None,
        gray: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """CIELAB ab ``(N, 2, H, W)`` (float32) of the generator's raw ``image`` output: the chroma of the
        colour image, or for an ``ab_bins`` model the tempered mean of its bin scores (at ``temperature``,
        default the model's own; a 0-d tensor in an exported graph) by the model's :attr:`decoding`.
        ``"srgb-mean"`` needs ``gray``, the network's input ``(N, 1, H, W)`` in [0, 1], for each pixel's
        lightness."""
        if self.ab_bins is not None:
            t = self.temperature if temperature is None else temperature
            if self.decoding == "srgb-mean":
                if gray is None:
                    raise ValueError("decoding 'srgb-mean' needs the gray input (gray=...) for each pixel's lightness")
                lightness = lab_l_from_srgb(gray.float().clamp(0, 1).expand(-1, 3, -1, -1))
                return ab_from_bin_logits_srgb_mean(
                    output.float(), self.ab_centers.float(), lightness, t, table=self.srgb_table.float()
                )
            return ab_from_bin_logits(output.float(), self.ab_centers.float(), t)
        if self.generator.head_kind == "ab":
            return output.float() * AB_SCALE
        return rgb_to_lab(((output.float() + 1) / 2).clamp(0, 1))[:, 1:]

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
        their lightness, with a ``UserWarning`` naming the file (see :func:`~agincolor.has_colour`; the
        ``agincolor colorize`` command skips them unless ``--recolor``). EXIF orientation is applied to PIL
        images and files; alpha is kept. Preparation and the final join are
        :mod:`agincolor.image_processor`'s, shared with :class:`~agincolor.OnnxColorizer`.

        Returns: a PIL RGB(A) image for PIL images and paths; a numpy (H, W, 3|4) array of the input's
        dtype; a tensor (3|4, H, W) or (N, 3|4, H, W) of the input's dtype and device; a list for a list.
        With ``return_attention=True`` each result is a :class:`ColorizeResult` (image, attention).
        ``saturation`` overrides the model's chroma scale for this call, and ``temperature`` the annealed-mean
        temperature of a model that predicts ab bins (``ab_bins`` in its config; an error for other models).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        saturation, temperature = self._run_options(saturation, temperature)
        run = dict(
            working_size=self.working_size,
            batch_size=batch_size,
            return_attention=return_attention,
            saturation=saturation,
            resample=self.resample,
            brightness=self.brightness,
        )
        chroma = lambda gray: self._chroma(gray, temperature)  # noqa: E731
        if isinstance(image, torch.Tensor) and image.dim() == 4:
            if image.shape[0] == 0:
                raise ValueError(f"cannot colorize an empty batch of shape {tuple(image.shape)}")
            outputs = ip.colorize_images(
                list(image), chroma, prepare=_prepare_tensor, finish=_finish_tensor,
                finish_attention=_tensor_attention, result_type=ColorizeResult, **run,
            )  # fmt: skip
            if return_attention:
                return ColorizeResult(torch.stack([o.image for o in outputs]), torch.stack([o.attention for o in outputs]))
            return torch.stack(outputs)
        return ip.colorize_images(
            image, chroma, prepare=_prepare_any, finish=_finish_any, finish_attention=_any_attention,
            result_type=ColorizeResult, **run,
        )  # fmt: skip

    def _run_options(self, saturation: float | None, temperature: float | None) -> tuple[float, float | None]:
        """``saturation`` and ``temperature`` of one call, checked (None: the model's own)."""
        if saturation is None:
            saturation = self.saturation
        else:
            _check_saturation(saturation)
        if temperature is not None:
            _check_temperature(temperature)
            if self.ab_bins is None:
                raise ValueError("temperature applies only to a model that predicts ab bins; this one outputs an image")
        return float(saturation), temperature

    def forward(self, x: torch.Tensor) -> Any:
        """The generator's forward on (N, C, H, W) images in [-1, 1] (for users who want raw outputs)."""
        return self.generator(x)


def _check_saturation(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 4:
        raise ValueError(f"saturation must be a number in [0, 4], got {value!r}")


def _check_temperature(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 10:
        raise ValueError(f"temperature must be a number in (0, 10], got {value!r}")


# ----------------------------------------------------------------------------------- torch tensors
# Tensors are the one input kind of this runner alone: they become numpy arrays and are prepared by the
# shared array code (agincolor.image_processor), and come back as tensors of their dtype and device.
def _prepare_tensor(t: torch.Tensor) -> tuple[ip.PreparedImage, torch.Tensor]:
    if t.dim() != 3 or t.shape[0] not in (1, 3, 4):
        raise ValueError(f"image tensors must have shape (1|3|4, H, W), got {tuple(t.shape)}")
    if not t.is_floating_point() and t.dtype != torch.uint8:
        raise TypeError(f"unsupported tensor dtype {t.dtype}; use float in [0, 1] or uint8")
    ip.check_size(t.shape[1], t.shape[2])
    data = t.detach().cpu()
    if data.is_floating_point() and data.dtype not in (torch.float32, torch.float64, torch.float16):
        data = data.float()  # bfloat16 and others numpy has no dtype for
    return ip.prepare_array(data.permute(1, 2, 0).numpy(), what="image tensor"), t


def _finish_tensor(rgb: np.ndarray, alpha: Any, original: torch.Tensor) -> torch.Tensor:
    out = torch.from_numpy(rgb).permute(2, 0, 1)
    if original.dtype != torch.uint8:
        out = out.to(original.dtype) / 255.0
    if alpha is not None:
        out = torch.cat([out, torch.from_numpy(np.asarray(alpha)).to(out.dtype).reshape(1, *out.shape[1:])], dim=0)
    return out.to(original.device)


def _tensor_attention(attention: np.ndarray | None, original: torch.Tensor) -> torch.Tensor | None:
    return None if attention is None else torch.from_numpy(attention)[None].to(original.device)


def _prepare_any(image: Any) -> tuple[ip.PreparedImage, Any]:
    return _prepare_tensor(image) if isinstance(image, torch.Tensor) else ip.prepare_image(image)


def _finish_any(rgb: np.ndarray, alpha: Any, original: Any) -> Any:
    return _finish_tensor(rgb, alpha, original) if isinstance(original, torch.Tensor) else ip.to_kind(rgb, alpha, original)


def _any_attention(attention: np.ndarray | None, original: Any) -> Any:
    if isinstance(original, torch.Tensor):
        return _tensor_attention(attention, original)
    return ip.attention_to_kind(attention, original)
