"""agincolor: automatic colorization of grayscale photos.

Implements Gao et al. 2020, "Attentional Colorization Networks with Adaptive Group-Instance
Normalization": the AGIN and GroupInstanceNorm layers, the CAM attention classifier, the generator
and the two-scale discriminator, plus a luminance-exact :class:`Colorizer` for inference.
"""

from .attention import CAMAttention, CAMOutput
from .colorizer import Colorizer, ColorizeResult, ImageReadError
from .discriminator import Discriminator, DiscriminatorOutput
from .generator import Generator, GeneratorOutput
from .norm import AGIN, GroupInstanceNorm, clip_rho_, get_norm_layer, register_norm_layer

__version__ = "0.1.0"

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
    "clip_rho_",
    "get_norm_layer",
    "register_norm_layer",
    "__version__",
]
