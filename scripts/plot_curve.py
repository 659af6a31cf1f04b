"""Draw the model card's learning curve (validation PSNR and colorfulness against training time) with PIL.

    python scripts/plot_curve.py docs/curve.json docs/images/curve.png

The JSON is a list of points ``{"stage": str, "minutes": float, "psnr": float, "colorfulness": float}``
in training order; ``minutes`` counts wall time from the start of training, whatever the hardware.
Stages get their own marker colours, listed in a legend.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

PANEL_W, PANEL_H, MARGIN = 520, 300, 60
STAGE_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def _stage_colours(points: list[dict]) -> dict[str, tuple[int, int, int]]:
    """One marker colour per stage, in order of first appearance."""
    stages = dict.fromkeys(p["stage"] for p in points)
    return {stage: STAGE_COLOURS[i % len(STAGE_COLOURS)] for i, stage in enumerate(stages)}


def _panel(draw: ImageDraw.ImageDraw, top: int, points: list[dict], key: str, label: str, bars: list[float]) -> None:
    left, right, bottom = MARGIN, MARGIN + PANEL_W, top + PANEL_H
    xs = [p["minutes"] for p in points]
    ys = [p[key] for p in points] + bars
    x_max = max(xs) * 1.05 or 1.0
    y_min, y_max = min(ys), max(ys)
    pad = (y_max - y_min) * 0.1 or 1.0
    low = y_min - pad
    y_min, y_max = (max(0.0, low) if y_min >= 0 else low), y_max + pad  # no negative axis for positive data

    def to_px(x: float, y: float) -> tuple[float, float]:
        return left + x / x_max * PANEL_W, bottom - (y - y_min) / (y_max - y_min) * PANEL_H

    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    for i in range(5):  # y ticks
        y = y_min + (y_max - y_min) * i / 4
        _, py = to_px(0, y)
        draw.line((left - 4, py, left, py), fill=(0, 0, 0))
        draw.text((4, py - 6), f"{y:.1f}", fill=(0, 0, 0))
    for i in range(5):  # x ticks
        x = x_max * i / 4
        px, _ = to_px(x, y_min)
        draw.line((px, bottom, px, bottom + 4), fill=(0, 0, 0))
        draw.text((px - 10, bottom + 6), f"{x:.0f}", fill=(0, 0, 0))
    for bar in bars:  # the bar, dashed
        _, py = to_px(0, bar)
        for x0 in range(left, right, 12):
            draw.line((x0, py, min(x0 + 6, right), py), fill=(120, 120, 120))
        draw.text((right - 90, py - 14), f"bar {bar:g}", fill=(120, 120, 120))
    draw.text((left, top - 16), label, fill=(0, 0, 0))
    pixels = [to_px(p["minutes"], p[key]) for p in points]
    draw.line(pixels, fill=(90, 90, 90), width=1)
    colours = _stage_colours(points)
    for p, (px, py) in zip(points, pixels):
        draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colours[p["stage"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("points", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--psnr-bar", type=float, default=23.5)
    parser.add_argument("--colorfulness-bar", type=float, default=20.0)
    args = parser.parse_args()
    points = json.loads(args.points.read_text())
    if not points:
        parser.error(f"{args.points} holds no points")
    height = 2 * PANEL_H + 3 * MARGIN + 40
    image = Image.new("RGB", (PANEL_W + 2 * MARGIN, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    _panel(draw, MARGIN, points, "psnr", "validation PSNR (dB)", [args.psnr_bar])
    _panel(draw, 2 * MARGIN + PANEL_H, points, "colorfulness", "validation colorfulness", [args.colorfulness_bar])
    draw.text((MARGIN, height - 40), "training wall time (minutes)", fill=(0, 0, 0))
    x = MARGIN + 200
    for stage, colour in _stage_colours(points).items():
        draw.ellipse((x, height - 38, x + 8, height - 30), fill=colour)
        draw.text((x + 12, height - 40), stage, fill=(0, 0, 0))
        x += 14 + 7 * len(stage)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.output)
    print(args.output)


if __name__ == "__main__":
    main()
