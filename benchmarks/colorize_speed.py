"""Time ``Colorizer.colorize`` with the bundled default model (or ``--model DIR``), and its peak memory on a large photo.

    python benchmarks/colorize_speed.py --threads 2

Prints median wall time of colorize() on a 256x256 gray image and on a 4000x3000 gray photo, the peak
resident memory of a fresh process that colorizes the 4000x3000 photo once, and, as a reference
measured in the same run, the median forward time of the paper-size generator (64 base channels,
4+4 blocks) at 256x256, which DESIGN.md's reference measured at 0.74 s on this machine.
Targets (issue 4): 256x256 <= 150 ms; 4000x3000 <= 2 s and <= 1.5 GB peak.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _photo(h: int, w: int):
    """A smooth synthetic gray photo (gradients and shapes), so the network sees image-like input."""
    from PIL import Image, ImageDraw, ImageFilter

    small = Image.new("L", (400, 300))
    draw = ImageDraw.Draw(small)
    for y in range(300):
        draw.line([(0, y), (400, y)], fill=int(60 + 150 * y / 300))
    draw.ellipse([60, 40, 200, 180], fill=220)
    draw.rectangle([220, 150, 380, 290], fill=40)
    return small.filter(ImageFilter.GaussianBlur(3)).resize((w, h), Image.BICUBIC)


def _median_time(fn, runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def child_peak(threads: int, folder: str | None) -> None:
    import torch

    from agincolor import Colorizer

    torch.set_num_threads(threads)
    model = Colorizer.from_pretrained(folder)
    image = _photo(3000, 4000)
    start = time.perf_counter()
    model.colorize(image)
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--model", default=None, help="a Colorizer folder to time instead of the bundled model")
    parser.add_argument("--child-peak", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_peak:
        child_peak(args.threads, args.model)
        return
    import torch

    from agincolor import Colorizer, Generator

    torch.set_num_threads(args.threads)
    model = Colorizer.from_pretrained(args.model)
    small = _photo(256, 256)
    large = _photo(3000, 4000)
    t_small, all_small = _median_time(lambda: model.colorize(small), args.runs)
    t_large, all_large = _median_time(lambda: model.colorize(large), max(3, args.runs // 2))
    reference = Generator().eval()
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        t_ref, _ = _median_time(lambda: reference(x), 3)
    peak = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--child-peak", "--threads", str(args.threads)]
            + (["--model", args.model] if args.model else []),
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
    )
    print(f"threads={args.threads}, {args.model or 'default model'}, working size {model.working_size}")
    print("| measurement | median | target | ratio to reference generator forward |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| reference: paper-size generator forward, 256x256 | {t_ref * 1000:.0f} ms | (0.74 s in DESIGN.md) | 1.00 |")
    print(f"| colorize 256x256 | {t_small * 1000:.0f} ms | 150 ms | {t_small / t_ref:.3f} |")
    print(f"| colorize 4000x3000 | {t_large:.2f} s | 2 s | {t_large / t_ref:.2f} |")
    print(f"| peak RSS, fresh process colorizing 4000x3000 once | {peak['peak_gb']:.2f} GB | 1.5 GB | - |")
    print(f"<!-- runs: 256 {[round(t * 1000) for t in all_small]} ms; 4000x3000 {[round(t, 2) for t in all_large]} s -->")


if __name__ == "__main__":
    main()
