"""Wall time of ``agincolor colorize`` on one photo from a cold process, for several models.

Each model is run ``--runs`` times, interleaved with the others so that machine noise hits all alike; the
median is printed with its difference from the first model's (the reference, by default the bundled one).

    python benchmarks/cold_start.py --model bundled --model runs/v04/colorizer --runs 7

``bundled`` stands for the model inside the package. Each run writes into a fresh temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(model: str, image: Path, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "agincolor", "colorize", str(image), "-o", tmp, "--no-progress"]
        if model != "bundled":
            cmd += ["--model", model]
        env = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={**env, **_python_env()})
        return time.perf_counter() - start


def _python_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k.startswith(("PYTHON", "HOME", "VIRTUAL_ENV", "LD_"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="'bundled' or a Colorizer folder; the first is the reference")
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "images" / "astronaut.jpg")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    models = args.model or ["bundled"]
    times: dict[str, list[float]] = {m: [] for m in models}
    one_run(models[0], args.image, args.threads)  # warm the file cache, not timed
    for _ in range(args.runs):
        for m in models:
            times[m].append(one_run(m, args.image, args.threads))
    ref = statistics.median(times[models[0]])
    print(f"image {args.image.name}, {args.runs} cold processes per model, {args.threads} threads")
    print("| model | median s | vs reference |")
    print("| --- | ---: | ---: |")
    for m in models:
        med = statistics.median(times[m])
        print(f"| {m} | {med:.2f} | {med - ref:+.2f} s ({med / ref:.2f}x) |")


if __name__ == "__main__":
    main()
