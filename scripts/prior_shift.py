"""Write a copy of an ab-bins Colorizer whose scores lean towards rare colours: rebalancing at decoding.

Zhang et al. weight the training loss by colour rarity (``--rebalance``); the same idea after training
adds ``strength * log w`` to the output layer's bias, ``w`` the rarity weights of
:class:`agincolor.train.losses.ChromaRebalance` (power 1, mix 0.5, blur 5) from the colour prior of the
training photos. Greens and blues then gain score against the browns and grays that dominate photos,
before the annealed mean. Count the prior on the model's own training folders (``--exclude`` the ones
it was held out of), then compare the copy with ``scripts/evaluate_sources.py``:

    python scripts/prior_shift.py runs/x/colorizer runs/x_shift0.2 --strength 0.2 \\
        --data ../shared/data/train --exclude portraits,urban,food
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from agincolor import Colorizer
from agincolor.train.data import find_images, load_rgb, source_name
from agincolor.train.losses import ChromaRebalance


def colour_counts(root: Path, exclude: list[str], per_folder: int, size: int = 128) -> torch.Tensor:
    """Pixel counts per ab bin of ``per_folder`` photos spread evenly over each sub-folder of ``root`` not
    in ``exclude`` (photos straight under ``root`` count as one more folder), resized to ``size`` square."""
    groups: dict[str, list[Path]] = {}
    for path in find_images(root, exclude):  # sorted, so each folder's photos keep their order
        groups.setdefault(source_name(path, root), []).append(path)
    counts = torch.zeros(1)
    for files in groups.values():
        for path in files[:: max(1, len(files) // per_folder)][:per_folder]:
            rgb = np.asarray(load_rgb(path).resize((size, size), Image.BILINEAR), dtype=np.float32)
            counts = counts + ChromaRebalance.histogram(torch.from_numpy(rgb / 127.5 - 1).permute(2, 0, 1)[None])
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="Colorizer folder of a model that predicts ab bins")
    parser.add_argument("out", type=Path, help="new folder for the shifted copy (must not exist)")
    parser.add_argument("--strength", type=float, required=True, help="multiple of log w added to the scores")
    parser.add_argument("--data", type=Path, required=True, help="the model's training photos, one sub-folder per source")
    parser.add_argument("--exclude", default="", help="comma-separated sub-folders the model did not train on")
    parser.add_argument("--per-folder", type=int, default=60, help="photos counted per source folder")
    args = parser.parse_args(argv)
    if args.per_folder < 1:
        parser.error(f"--per-folder must be at least 1, got {args.per_folder}")
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    try:
        colorizer = Colorizer.from_pretrained(args.source, local_files_only=True)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    if colorizer.ab_bins is None:
        parser.error(f"{args.source} predicts colours directly, not ab bins: there are no scores to shift")
    grid = colorizer.ab_bins
    try:
        counts = colour_counts(args.data, [e for e in args.exclude.split(",") if e], args.per_folder)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    weights = ChromaRebalance.from_histogram(counts, grid["bin_size"], grid["limit"], power=1.0).weights
    bias = colorizer.generator.head[0].bias
    with torch.no_grad():
        bias += (args.strength * weights.flatten().log()).to(bias)
    colorizer.save_pretrained(args.out)
    print(f"wrote {args.out}: scores shifted by {args.strength} x log w, log w in "
          f"[{weights.log().min():.2f}, {weights.log().max():.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
