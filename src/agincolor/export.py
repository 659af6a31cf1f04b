"""Export a :class:`~agincolor.Colorizer` to ONNX, for :class:`~agincolor.OnnxColorizer` (onnxruntime, no torch).

The exporter is PyTorch's own, ``torch.onnx.export(..., dynamo=True)``: it captures the graph with
``torch.export`` and writes it with onnxscript (both from the ``onnx`` extra: ``pip install
"agincolor[onnx]"``). What is exported is :meth:`Colorizer.gray_to_chroma`, the network as every runner sees
it, so the decoding of each head (an image, ab-bin scores, ab itself) travels inside the graph:

* input ``gray``: (N, 1, H, W) float32 in [0, 1], N, H and W dynamic (H, W >= 32);
* input ``temperature`` (only for a model that predicts ab bins): a float32 scalar, the annealed-mean
  temperature;
* outputs ``ab``: (N, 2, H, W) float32 CIELAB chroma, and ``heatmap``: (N, 1, H', W') the CAM heatmap.

The Colorizer's config rides in the file's metadata (``agincolor.architecture``, ``agincolor.config``,
``agincolor.format``), so a runner can refuse a file that is not one of ours.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .colorizer import ARCHITECTURE, Colorizer

__all__ = ["DEFAULT_OPSET", "FORMAT_VERSION", "METADATA_KEYS", "export_onnx", "onnx_metadata"]

#: ONNX opset of exported graphs.
DEFAULT_OPSET = 18
#: Version of the graph's interface (inputs, outputs, metadata) that runners check.
FORMAT_VERSION = "1"
#: Metadata keys of an exported file: the architecture, the Colorizer's config (JSON) and the format.
METADATA_KEYS = ("agincolor.architecture", "agincolor.config", "agincolor.format")
# A batch of 2 at a size off the generator's multiples traces the general case (padding and cropping):
# torch.export would otherwise specialise a batch of 1 or an exact multiple into the graph.
_EXAMPLE_SHAPE = (2, 1, 70, 90)


class _ChromaGraph(nn.Module):
    def __init__(self, colorizer: Colorizer) -> None:
        super().__init__()
        self.colorizer = colorizer

    def forward(self, gray: torch.Tensor, temperature: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.colorizer.gray_to_chroma(gray, temperature)


def onnx_metadata(colorizer: Colorizer) -> dict[str, str]:
    """The metadata an exported file carries: architecture, the Colorizer's config (JSON), format version."""
    config = colorizer.current_config()
    return {
        "agincolor.architecture": ARCHITECTURE,
        "agincolor.config": json.dumps(config, sort_keys=True),
        "agincolor.format": FORMAT_VERSION,
    }


def export_onnx(colorizer: Colorizer, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``colorizer``'s network to the ONNX file ``path`` (see the module docstring); returns the path.

    Raises ``ImportError`` naming the ``onnx`` extra when the exporter's packages are missing and
    ``ValueError`` for an opset below 17.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset must be an int >= 17, got {opset!r}")
    try:
        import onnx
        import onnxscript  # noqa: F401  (the dynamo exporter writes the graph with it)
    except ImportError as err:
        raise ImportError(f'ONNX export needs the onnx extra: pip install "agincolor[onnx]" ({err})') from None
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give the .onnx file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    param = next(colorizer.parameters())
    graph = _ChromaGraph(colorizer).eval()
    gray = torch.rand(*_EXAMPLE_SHAPE, device=param.device)
    batch = torch.export.Dim("batch", min=1, max=1024)
    height, width = torch.export.Dim("height", min=32, max=16384), torch.export.Dim("width", min=32, max=16384)
    args: tuple[Any, ...] = (gray,)
    shapes: dict[str, Any] = {"gray": {0: batch, 2: height, 3: width}}
    inputs = ["gray"]
    if colorizer.ab_bins is not None:
        args += (torch.tensor(colorizer.temperature, dtype=torch.float32, device=param.device),)
        shapes["temperature"] = None
        inputs.append("temperature")
    was_training = colorizer.training
    colorizer.eval()
    # The exporter reports its progress on stdout; a library call keeps quiet unless it fails.
    chatter = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stdout(chatter):
            program = torch.onnx.export(
                graph,
                args,
                dynamo=True,
                opset_version=opset,
                input_names=inputs,
                output_names=["ab", "heatmap"],
                dynamic_shapes=shapes,
                external_data=False,
            )
    except Exception as err:
        raise RuntimeError(f"ONNX export failed: {err}\n{chatter.getvalue()}") from err
    finally:
        colorizer.train(was_training)
    model = program.model_proto
    for key, value in onnx_metadata(colorizer).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "agincolor"
    onnx.save_model(model, str(path))
    return path
