"""Measure has_colour's bar: colour photos must count as colour, their gray and toned versions as gray.

    python scripts/colour_bar.py                       # ../shared/data/val/bsds500, all 500 photos
    python scripts/colour_bar.py DIR --limit 100 --show 5

For every photo: the photo itself, its gray version (PIL convert("L") as RGB), a sepia-toned and a
cyanotype-toned version, and the gray with a faint scanner cast: the bar is that each is called right for
at least 99% of the photos. The toned versions saved and reread as JPEG (quality 85, as many scans are)
are reported too, outside the bar. Prints the share each version gets right and the measure's spread.
tests/test_has_colour.py imports the toning functions and checks the bar on all 500 (a slow test).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from agincolor.image_processor import COLOUR_THRESHOLD, colour_measure  # noqa: E402

# Gradient maps of two classic tonings, dark to light, in sRGB (0-255): a print's colour is a function
# of its density alone.
SEPIA = np.array([(38, 24, 12), (112, 78, 48), (196, 162, 120), (246, 234, 210)], dtype=np.float64)
CYANOTYPE = np.array([(10, 32, 78), (36, 86, 150), (140, 180, 214), (236, 242, 246)], dtype=np.float64)


def gray_of(photo: Image.Image) -> np.ndarray:
    """(H, W) uint8 luma of a photo."""
    return np.asarray(photo.convert("L"))


def tone(gray: np.ndarray, ramp: np.ndarray) -> np.ndarray:
    """(H, W) uint8 gray -> (H, W, 3) uint8 through a piecewise-linear gradient map ``ramp`` (dark to light)."""
    stops = np.linspace(0.0, 255.0, len(ramp))
    out = np.stack([np.interp(gray.astype(np.float64), stops, ramp[:, c]) for c in range(3)], axis=-1)
    return np.round(out).astype(np.uint8)


def with_cast(gray: np.ndarray, cast: tuple[int, int, int] = (6, 3, -5)) -> np.ndarray:
    """Gray with a constant colour cast, as a scanner or yellowed paper adds."""
    return np.clip(np.stack([gray.astype(np.int16)] * 3, -1) + np.array(cast, np.int16), 0, 255).astype(np.uint8)


def as_jpeg(rgb: np.ndarray, quality: int = 85) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def versions(photo: Image.Image) -> dict[str, np.ndarray]:
    """The photo and its four gray-looking versions, as (H, W, 3) uint8 arrays."""
    gray = gray_of(photo)
    return {
        "colour": np.asarray(photo.convert("RGB")),
        "gray": np.stack([gray] * 3, -1),
        "sepia": tone(gray, SEPIA),
        "cyanotype": tone(gray, CYANOTYPE),
        "cast": with_cast(gray),
    }


def jpeg_versions(photo: Image.Image) -> dict[str, np.ndarray]:
    """The toned versions saved and reread as JPEG (quality 85), as many scans are: reported, not in the bar."""
    gray = gray_of(photo)
    return {"sepia-jpeg": as_jpeg(tone(gray, SEPIA)), "cyanotype-jpeg": as_jpeg(tone(gray, CYANOTYPE))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(REPO.parent / "shared" / "data" / "val" / "bsds500"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--show", type=int, default=3, help="list this many worst cases of each version")
    args = parser.parse_args(argv)
    files = sorted(p for p in Path(args.folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    files = files[: args.limit] if args.limit else files
    if not files:
        parser.error(f"no photos in {args.folder!r}")
    scores: dict[str, list[tuple[float, str]]] = {}
    for path in files:
        with Image.open(path) as photo:
            for name, rgb in {**versions(photo), **jpeg_versions(photo)}.items():
                scores.setdefault(name, []).append((colour_measure(rgb), path.name))
    print(f"{len(files)} photos from {args.folder}; threshold {COLOUR_THRESHOLD:g}")
    for name, values in scores.items():
        measures = np.array([v for v, _ in values])
        right = measures > COLOUR_THRESHOLD if name == "colour" else measures <= COLOUR_THRESHOLD
        q = np.percentile(measures, [1, 50, 99])
        print(f"  {name:9s} counted {'colour' if name == 'colour' else 'gray':6s} {right.mean():7.2%}   "
              f"measure p1 {q[0]:5.2f}  median {q[1]:5.2f}  p99 {q[2]:5.2f}")
        worst = sorted(values, reverse=name != "colour")[: args.show]
        print("    worst: " + ", ".join(f"{f} {v:.2f}" for v, f in worst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
