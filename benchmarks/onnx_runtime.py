"""The ONNX export under onnxruntime against PyTorch, on 2 threads, in one run (medians and ratios).

    python benchmarks/onnx_runtime.py                          # the bundled model
    python benchmarks/onnx_runtime.py --model DIR --threads 2 --runs 7
    python benchmarks/onnx_runtime.py --against ../main/src    # also: the whole colorize of another tree

Exports the model to a temporary .onnx file, then times, with the same thread count for both:
* the network forward at 256x256 (PyTorch ``Colorizer.gray_to_chroma`` against ``OnnxColorizer.chroma``);
* the whole ``colorize`` of a 256x256 and a 4000x3000 gray photo (preparation, network, join).
With ``--against SRC`` it also times ``Colorizer.colorize`` at 4000x3000 from the agincolor source tree SRC
in a subprocess, alternating with this tree's, so a refactor's effect shows as a ratio in the same run.
Aim (issue 17): onnxruntime 1.5x faster than PyTorch on the forward.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


# The synthetic photo and the timing loop of colorize_speed.py, the sibling benchmark.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from colorize_speed import _median_time, _photo as _photo_image  # noqa: E402


def _photo(h: int, w: int) -> np.ndarray:
    """colorize_speed.py's synthetic gray photo as uint8 (H, W)."""
    return np.asarray(_photo_image(h, w))


def _median(fn, runs: int) -> float:
    return _median_time(fn, runs)[0]


_OTHER_TREE = """
import sys, time, statistics, numpy as np, torch
sys.path.insert(0, {src!r}); torch.set_num_threads({threads})
from agincolor.colorizer import Colorizer
model = Colorizer.from_pretrained({model!r}) if {model!r} else Colorizer.from_pretrained()
photo = np.load({photo!r})
model.colorize(photo)
times = []
for _ in range({runs}):
    t = time.perf_counter(); model.colorize(photo); times.append(time.perf_counter() - t)
print(statistics.median(times))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Colorizer folder or Hub id (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--large-runs", type=int, default=3)
    parser.add_argument("--against", default=None, metavar="SRC", help="another agincolor source tree to time")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(REPO / "src"))
    import torch

    from agincolor import Colorizer, OnnxColorizer, export_onnx

    torch.set_num_threads(args.threads)
    model = Colorizer.from_pretrained(args.model).eval()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx")
        runner = OnnxColorizer(path, threads=args.threads)
        gray = np.random.default_rng(0).random((1, 1, 256, 256), dtype=np.float32)
        results["forward_torch_s"] = _median(lambda: model._chroma(gray), args.runs)
        results["forward_onnx_s"] = _median(lambda: runner.chroma(gray), args.runs)
        small, large = _photo(256, 256), _photo(3000, 4000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results["colorize_256_torch_s"] = _median(lambda: model.colorize(small), args.runs)
            results["colorize_256_onnx_s"] = _median(lambda: runner.colorize(small), args.runs)
            results["colorize_4000x3000_torch_s"] = _median(lambda: model.colorize(large), args.large_runs)
            results["colorize_4000x3000_onnx_s"] = _median(lambda: runner.colorize(large), args.large_runs)
            if args.against:
                photo = Path(tmp) / "large.npy"
                np.save(photo, large)
                code = _OTHER_TREE.format(
                    src=str(Path(args.against).resolve()), threads=args.threads, model=args.model or "",
                    photo=str(photo), runs=args.large_runs,
                )  # fmt: skip
                ours = _OTHER_TREE.format(
                    src=str(REPO / "src"), threads=args.threads, model=args.model or "", photo=str(photo),
                    runs=args.large_runs,
                )  # fmt: skip
                env = dict(os.environ, PYTHONWARNINGS="ignore")
                other, this = [], []
                for _ in range(3):  # alternate, so load changes on the machine hit both
                    other.append(float(subprocess.check_output([sys.executable, "-c", code], env=env, text=True)))
                    this.append(float(subprocess.check_output([sys.executable, "-c", ours], env=env, text=True)))
                results["colorize_4000x3000_against_s"] = statistics.median(other)
                results["colorize_4000x3000_this_tree_s"] = statistics.median(this)
    ratios = {
        "forward_torch_over_onnx": results["forward_torch_s"] / results["forward_onnx_s"],
        "colorize_256_torch_over_onnx": results["colorize_256_torch_s"] / results["colorize_256_onnx_s"],
        "colorize_4000x3000_torch_over_onnx": results["colorize_4000x3000_torch_s"] / results["colorize_4000x3000_onnx_s"],
    }
    if args.against:
        ratios["colorize_4000x3000_this_over_against"] = (
            results["colorize_4000x3000_this_tree_s"] / results["colorize_4000x3000_against_s"]
        )
    print(json.dumps({"threads": args.threads, "model": args.model or "bundled", **results, **ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
