"""Colorize with an exported ONNX file and onnxruntime alone: no torch is imported.

    from agincolor import OnnxColorizer
    colorizer = OnnxColorizer("colorizer.onnx")   # written by: agincolor export --onnx colorizer.onnx
    colorizer.colorize("scan.jpg").save("scan.png")

The file is made by :func:`agincolor.export.export_onnx` (``agincolor export``) and carries the
Colorizer's config in its metadata; any other ONNX file is refused. Preparation, the join of the predicted
chroma with the input's own lightness and the output kinds are :mod:`agincolor.image_processor`'s, the
code the PyTorch :class:`~agincolor.Colorizer` runs too, so both give the same photo (to within one uint8
level, from float differences in the network). Needs the ``onnx`` extra (``pip install "agincolor[onnx]"``).
"""

from __future__ import annotations

import json
import numbers
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import image_processor as ip
from ._video_methods import VideoMethods

__all__ = ["OnnxColorizer"]

# Mirrors agincolor.export (which imports torch): the interface this runner reads.
_ARCHITECTURE = "agincolor.Generator"
_FORMAT_VERSION = "1"


def _check_number(name: str, value: object, low: float, high: float, low_open: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok:
        ok = (low < value if low_open else low <= value) and value <= high  # type: ignore[operator]
    if not ok:
        raise ValueError(f"{name} must be a number in {'(' if low_open else '['}{low:g}, {high:g}], got {value!r}")
    return float(value)  # type: ignore[arg-type]


class OnnxColorizer(VideoMethods):
    """Run an exported Colorizer with onnxruntime; ``colorize`` takes and returns what
    :meth:`agincolor.Colorizer.colorize` does, except torch tensors.

    Args:
        path (str or PathLike): the ``.onnx`` file written by ``agincolor export``.
        threads (int, default None): onnxruntime's intra-op threads (None: its default, all cores).
        providers (list of str, default None): onnxruntime execution providers (None: CPU).

    Attributes read from the file: ``config`` (the Colorizer's config), ``working_size``, ``saturation``,
    ``temperature``, ``resample`` and ``brightness`` (each may be changed, as on a Colorizer), and ``decoding`` (read-only: it is part
    of the graph; export again to change it).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, threads: int | None = None, providers: Sequence[str] | None = None
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError(f'OnnxColorizer needs onnxruntime: pip install "agincolor[onnx]" ({err})') from None
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX file {str(self.path)!r} does not exist")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf / InvalidGraph types
            raise ValueError(f"{str(self.path)!r} is not a readable ONNX model: {' '.join(str(err).split())}") from None
        self.config = self._read_config()
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        wants_temperature = self.config.get("ab_bins") is not None
        expected = {"gray", "temperature"} if wants_temperature else {"gray"}
        if set(inputs) != expected or outputs != ["ab", "heatmap"] or inputs["gray"].shape[1] != 1:
            raise ValueError(
                f"{str(self.path)!r} does not match its agincolor metadata: inputs {sorted(inputs)}, outputs "
                f"{outputs}; expected inputs {sorted(expected)} (gray with 1 channel) and outputs ['ab', 'heatmap']"
            )
        self._uses_temperature = wants_temperature
        working = self.config.get("working_size", 256)
        if isinstance(working, bool) or not isinstance(working, int) or working < ip.MIN_SIZE:
            raise ValueError(f"{str(self.path)!r}: working_size in its config must be an int >= {ip.MIN_SIZE}")
        self.working_size = working
        self.saturation = _check_number("saturation", self.config.get("saturation", 1.0), 0, 4)
        self.temperature = _check_number("temperature", self.config.get("temperature", 0.38), 0, 10, low_open=True)
        try:
            self.resample = self.config.get("resample", "bilinear")
            self.brightness = self.config.get("brightness", "lightness")
        except ValueError as err:
            raise ValueError(f"{str(self.path)!r}: {err} in its config") from None

    resample = ip.resample_property()
    brightness = ip.brightness_property()

    @property
    def decoding(self) -> str:
        """How the graph turns bin scores into a colour ("ab-mean" or "srgb-mean"; fixed when it was exported)."""
        return str(self.config.get("decoding", "ab-mean"))

    def _read_config(self) -> dict[str, Any]:
        meta = self.session.get_modelmeta().custom_metadata_map
        name = repr(str(self.path))
        if "agincolor.config" not in meta or "agincolor.architecture" not in meta:
            raise ValueError(
                f"{name} carries no agincolor config in its metadata; it was not written by 'agincolor export' "
                "(export the model again with: agincolor export --model ID|DIR --onnx OUT.onnx)"
            )
        architecture = meta["agincolor.architecture"]
        if architecture != _ARCHITECTURE:
            raise ValueError(f"{name} is for architecture {architecture!r}; OnnxColorizer runs only {_ARCHITECTURE!r}")
        if meta.get("agincolor.format") != _FORMAT_VERSION:
            raise ValueError(
                f"{name} has export format {meta.get('agincolor.format')!r}; this agincolor reads format "
                f"{_FORMAT_VERSION!r} (export it again with this version)"
            )
        try:
            config = json.loads(meta["agincolor.config"])
        except json.JSONDecodeError as err:
            raise ValueError(f"{name}: its agincolor.config metadata is not valid JSON ({err})") from None
        if not isinstance(config, dict) or config.get("architecture", _ARCHITECTURE) != _ARCHITECTURE:
            raise ValueError(f"{name}: its agincolor.config metadata is not a config for {_ARCHITECTURE!r}")
        return config

    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) the network sees for an input of this size (as :meth:`Colorizer.working_shape`)."""
        return ip.working_shape(height, width, self.working_size)

    def chroma(self, gray: np.ndarray, temperature: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The network: gray (N, 1, h, w) float32 in [0, 1] -> (ab (N, 2, h, w), heatmap (N, 1, h', w'))."""
        feed: dict[str, np.ndarray] = {"gray": np.ascontiguousarray(gray, dtype=np.float32)}
        if self._uses_temperature:
            feed["temperature"] = np.array(self.temperature if temperature is None else temperature, np.float32)
        ab, heatmap = self.session.run(["ab", "heatmap"], feed)
        return ab, heatmap

    _chroma = chroma  # what the video methods call

    def colorize(
        self,
        image: Any,
        *,
        batch_size: int = 8,
        return_attention: bool = False,
        saturation: float | None = None,
        temperature: float | None = None,
    ) -> Any:
        """Colorize one image or a list: PIL images, file paths and numpy arrays, each returned as its kind
        (see :meth:`agincolor.Colorizer.colorize`; torch tensors are refused with a ``TypeError``)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        saturation, temperature = self._run_options(saturation, temperature)
        return ip.colorize_images(
            image,
            lambda gray: self.chroma(gray, temperature),
            working_size=self.working_size,
            batch_size=batch_size,
            return_attention=return_attention,
            saturation=saturation,
            resample=self.resample,
            brightness=self.brightness,
            prepare=_prepare_no_tensor,
        )

    def _run_options(self, saturation: float | None, temperature: float | None) -> tuple[float, float | None]:
        saturation = self.saturation if saturation is None else _check_number("saturation", saturation, 0, 4)
        if temperature is not None:
            _check_number("temperature", temperature, 0, 10, low_open=True)
            if not self._uses_temperature:
                raise ValueError("temperature applies only to a model that predicts ab bins; this one does not")
        return saturation, temperature


def _prepare_no_tensor(image: Any) -> tuple[ip.PreparedImage, Any]:
    if type(image).__module__.split(".")[0] == "torch":  # recognised without importing torch
        raise TypeError(
            "OnnxColorizer does not take torch tensors; pass a numpy array (tensor.permute(1, 2, 0).numpy()), "
            "a PIL image or a file path, or use agincolor.Colorizer"
        )
    return ip.prepare_image(image)
