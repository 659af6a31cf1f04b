"""agincolor: automatic colorization of grayscale photos.

Implements Gao et al. 2020, "Attentional Colorization Networks with Adaptive Group-Instance
Normalization": the AGIN and GroupInstanceNorm layers, the CAM attention classifier, the generator
and the two-scale discriminator, plus a luminance-exact :class:`Colorizer` for inference, an ONNX export
(:func:`export_onnx`) and :class:`OnnxColorizer`, which runs one with onnxruntime alone.

``import agincolor`` does not import torch: the torch-based names load on first use (PEP 562), so
:class:`OnnxColorizer`, :func:`has_colour` and :mod:`agincolor.image_processor` work where torch is absent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .image_processor import ColorizeResult, ImageReadError, colour_measure, has_colour
from .onnx_colorizer import OnnxColorizer

__version__ = "0.1.0"

# Public name -> the module that defines it; each module imports torch, so it loads on first access.
_LAZY = {
    "AGIN": "norm",
    "GroupInstanceNorm": "norm",
    "clip_rho_": "norm",
    "get_norm_layer": "norm",
    "register_norm_layer": "norm",
    "CAMAttention": "attention",
    "CAMOutput": "attention",
    "Colorizer": "colorizer",
    "Discriminator": "discriminator",
    "DiscriminatorOutput": "discriminator",
    "Generator": "generator",
    "GeneratorOutput": "generator",
    "export_onnx": "export",
}

__all__ = [
    "AGIN",
    "CAMAttention",
    "CAMOutput",
    "ColorizeResult",
    "Colorizer",
    "Discriminator",
    "DiscriminatorOutput",
    "Generator",
    "GeneratorOutput",
    "GroupInstanceNorm",
    "ImageReadError",
    "OnnxColorizer",
    "clip_rho_",
    "colour_measure",
    "export_onnx",
    "get_norm_layer",
    "has_colour",
    "register_norm_layer",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agincolor' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # static type checkers and IDEs see the eager imports
    from .attention import CAMAttention, CAMOutput
    from .colorizer import Colorizer
    from .discriminator import Discriminator, DiscriminatorOutput
    from .export import export_onnx
    from .generator import Generator, GeneratorOutput
    from .norm import AGIN, GroupInstanceNorm, clip_rho_, get_norm_layer, register_norm_layer
