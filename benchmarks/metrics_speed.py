"""Time the evaluation metrics on one 256x256 RGB pair, the protocol's photo size.

    python benchmarks/metrics_speed.py [--runs 7]

Prints the median and best wall time of ``agincolor.metrics.ssim`` and ``psnr`` after one warm-up call
(the first touch of fresh memory is not the metric's cost). The SSIM of a 256x256 pair aimed at under
0.1 s when it was written; it was a timed test until timing left the test suite, where a loaded
machine made it fail for no fault of the code.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from agincolor.metrics import psnr, ssim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(6)
    a = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    print("| metric, 256x256 RGB | median | best |")
    print("| --- | ---: | ---: |")
    for name, fn in (("ssim", ssim), ("psnr", psnr)):
        fn(a, b)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            fn(a, b)
            times.append(time.perf_counter() - start)
        print(f"| {name} | {statistics.median(times) * 1e3:.1f} ms | {min(times) * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
