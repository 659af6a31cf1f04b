"""Colorize every image under a folder with the Python API, writing PNGs and never overwriting a file.

    python examples/colorize_folder.py photos/ colorized/
    python examples/colorize_folder.py photos/ colorized/ --model runs/landscape/colorizer --batch-size 4

photos/trip/beach.jpg becomes colorized/trip/beach.png. ``agincolor colorize`` does the same with more
care (unreadable files are skipped and listed, writes are atomic); this script shows the API under it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from agincolor.colorizer import Colorizer

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="folder of photos (searched recursively)")
    parser.add_argument("output", type=Path, help="folder for the colorized PNGs")
    parser.add_argument("--model", default=None, help="Colorizer folder or Hub id (default: the bundled model)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)

    colorizer = Colorizer.from_pretrained(args.model)
    sources = sorted(p for p in args.input.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    jobs = [(src, args.output / src.relative_to(args.input).with_suffix(".png")) for src in sources]
    todo = [(src, dst) for src, dst in jobs if not dst.exists()]
    print(f"{len(jobs)} images, {len(jobs) - len(todo)} already colorized")

    with tqdm(total=len(todo), unit="img") as bar:
        for start in range(0, len(todo), args.batch_size):
            batch = todo[start : start + args.batch_size]
            # Paths in, PIL images out: each keeps its own size, lightness and alpha.
            images = colorizer.colorize([src for src, _ in batch], batch_size=args.batch_size)
            for (_, dst), image in zip(batch, images):
                dst.parent.mkdir(parents=True, exist_ok=True)
                with open(dst, "xb") as f:  # "x" fails rather than overwrite a file that appeared meanwhile
                    image.save(f, format="PNG")
            bar.update(len(batch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
