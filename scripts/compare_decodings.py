"""Per-photo PSNR of an ab-bins model's two decodings, srgb-mean minus ab-mean, on one folder; or, with
``--against OTHER``, of two models, MODEL minus OTHER, each with its own decoding.

    python scripts/compare_decodings.py --model src/agincolor/pretrained --folder ../shared/data/val/bsds500
    python scripts/compare_decodings.py --model runs/x/colorizer --against src/agincolor/pretrained \
        --folder ../shared/data/val/bsds500

Same protocol as `agincolor evaluate` (photos at 256x256, gray input from PIL's ``convert("L")``, PSNR
capped as there), the same photos as ``scripts/evaluate_sources.py --limit N`` (every k-th of the sorted
list), both arms at the same temperature and saturation (by default each model's own). Prints the mean difference, its standard
error and the share of photos each way: whether a small change in the folder's mean is a consistent one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from agincolor.evaluate import _capped_psnr, _load_256, list_images

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_sources import load_colorizer, spread  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a Colorizer folder, or 'bundled'")
    parser.add_argument("--against", default=None, help="compare with this Colorizer (or 'bundled') instead of the other decoding")
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=None, help="photos, spread evenly over the sorted list")
    parser.add_argument("--temperature", type=float, default=None, help="default: the model's own")
    parser.add_argument("--saturation", type=float, default=None, help="default: the model's own")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    colorizer = load_colorizer(args.model)
    if args.against is None:
        if colorizer.ab_bins is None:
            parser.error(f"{args.model} does not predict ab bins: it has one decoding only")
        # (label, model, decoding), the second arm subtracted from the first.
        arms = [("srgb-mean", colorizer, "srgb-mean"), ("ab-mean", colorizer, "ab-mean")]
    else:
        arms = [(args.model, colorizer, colorizer.decoding)]
        other = load_colorizer(args.against)
        arms.append((args.against, other, other.decoding))
    files = spread(list_images(args.folder), args.limit)
    gains = []
    for start in range(0, len(files), 16):
        truths = [_load_256(f) for f in files[start : start + 16]]
        grays = [t.convert("L") for t in truths]
        outputs = []
        for _, model, decoding in arms:
            model.decoding = decoding
            outputs.append(model.colorize(grays, temperature=args.temperature, saturation=args.saturation))
        for truth, after, before in zip(truths, *outputs):
            want = np.asarray(truth)
            gains.append(_capped_psnr(np.asarray(after), want) - _capped_psnr(np.asarray(before), want))
    d = np.array(gains)
    error = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    print(
        f"{args.folder}: {len(d)} photos, {arms[0][0]} minus {arms[1][0]} {d.mean():+.3f} dB (standard error {error:.3f}), "
        f"better on {np.mean(d > 0):.0%}, worse on {np.mean(d < 0):.0%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
