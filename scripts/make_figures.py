"""Figures for the README and the model card, made with the bundled default model.

    python scripts/make_figures.py --val ../shared/data/val/bsds500

docs/images/examples.jpg: each sample photo of examples/images as gray input | colorized | attention map.
docs/images/typical.jpg: validation photos picked by rule, not by eye: those at evenly spaced quantiles
(10%, 30%, 50%, 70%, 90% for five) of the PSNR the model gains over the gray input (gray input |
colorized | ground truth).
docs/images/failures.jpg: the validation photos where the model loses most PSNR against the gray input
(gray input | colorized | ground truth), with their numbers printed.
docs/images/grid24.jpg: 24 validation photos picked by rule, every (count / 24)-th of the sorted list
(BSDS500 mixes people, animals, buildings and landscapes, so people are among them), each as colorized
over ground truth, in 6 columns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from agincolor import Colorizer
from agincolor.evaluate import _load_256, list_images
from agincolor.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent


def heat_colors(attention: Image.Image) -> Image.Image:
    """Blue (low) to red (high) rendering of an "L" attention map."""
    a = np.asarray(attention, dtype=np.float32) / 255.0
    rgb = np.stack([np.clip(1.5 - abs(4 * a - 3), 0, 1), np.clip(1.5 - abs(4 * a - 2), 0, 1), np.clip(1.5 - abs(4 * a - 1), 0, 1)], -1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def row(images: list[Image.Image], height: int) -> Image.Image:
    scaled = [im.convert("RGB").resize((round(im.width * height / im.height), height), Image.LANCZOS) for im in images]
    out = Image.new("RGB", (sum(s.width for s in scaled) + 4 * (len(scaled) - 1), height), "white")
    x = 0
    for s in scaled:
        out.paste(s, (x, 0))
        x += s.width + 4
    return out


def stack(rows: list[Image.Image]) -> Image.Image:
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 4 * (len(rows) - 1)), "white")
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + 4
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--val", required=True)
    parser.add_argument("--failures", type=int, default=4)
    parser.add_argument("--typical", type=int, default=5)
    parser.add_argument("--grid", type=int, default=24, help="photos in grid24.jpg")
    parser.add_argument("--model", default=None, help="Colorizer folder (default: the bundled model)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for the figures")
    args = parser.parse_args()
    model = Colorizer.from_pretrained(args.model)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    rows = []
    for path in sorted((ROOT / "examples" / "images").glob("*.jpg")):
        gray = Image.open(path)
        result = model.colorize(gray, return_attention=True)
        rows.append(row([gray, result.image, heat_colors(result.attention)], 200))
    stack(rows).save(out_dir / "examples.jpg", quality=88)

    scored = []
    for path in list_images(args.val):
        truth = _load_256(path)
        gray = truth.convert("L")
        colour = model.colorize(gray)
        t = np.asarray(truth)
        loss = psnr(np.asarray(gray.convert("RGB")), t) - psnr(np.asarray(colour), t)
        scored.append((loss, path, gray, colour, truth))
    scored.sort(key=lambda s: s[0], reverse=True)
    worst = scored[: args.failures]
    for loss, path, *_ in worst:
        print(f"{path.name}: {loss:.2f} dB below the gray input")
    stack([row([g, c, t], 200) for _, _, g, c, t in worst]).save(out_dir / "failures.jpg", quality=88)

    # Ascending gain = descending loss; the photo at quantile q of the gain.
    gains = scored[::-1]
    picks = [gains[min(len(gains) - 1, int((k + 0.5) / args.typical * len(gains)))] for k in range(args.typical)]
    for loss, path, *_ in picks:
        print(f"typical: {path.name}: {-loss:+.2f} dB against the gray input")
    stack([row([g, c, t], 200) for _, _, g, c, t in picks]).save(out_dir / "typical.jpg", quality=88)

    by_name = sorted(scored, key=lambda s: s[1].name)
    chosen = [by_name[int(k * len(by_name) / args.grid)] for k in range(args.grid)]
    print("grid:", " ".join(f"{path.name} ({-loss:+.2f} dB)" for loss, path, *_ in chosen))
    cells = [stack([c.resize((128, 128), Image.LANCZOS), t.resize((128, 128), Image.LANCZOS)]) for _, _, _, c, t in chosen]
    stack([row(cells[i : i + 6], cells[0].height) for i in range(0, len(cells), 6)]).save(out_dir / "grid24.jpg", quality=88)


if __name__ == "__main__":
    main()
