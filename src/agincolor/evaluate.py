"""The evaluation protocol of DESIGN.md: colour photos at 256x256, gray input from PIL's convert("L").

For each photo, the model colorizes the gray version; PSNR (RGB, uint8 range) and SSIM compare the
result with the original, colorfulness (Hasler and Suesstrunk 2003) measures how colourful it is, and
the green and blue chroma recalls (:func:`~agincolor.metrics.chroma_recall`, pooled over all pixels of
all photos) measure how much of the true green (vegetation) and blue (sky, water) it restores.
The gray baseline (output = gray input) and the ground truth's colorfulness are reported beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from .image_processor import IMAGE_SUFFIXES
from .metrics import HUES, RECALL_THRESHOLD, _lab_of, _recall_sums_of_lab, colorfulness, psnr, ssim

__all__ = ["EVAL_SIZE", "EvaluationResult", "evaluate", "format_table", "list_images"]

EVAL_SIZE = 256


@dataclass
class EvaluationResult:
    """Mean metrics over the evaluated images.

    ``rows`` maps "model", "gray baseline" and "ground truth" to their mean PSNR, SSIM and colorfulness,
    and their pooled chroma recalls "green" and "blue" (``nan`` when no photo has pixels of that hue).
    The ground truth, the reference, has only its colorfulness. ``skipped`` lists files that could not
    be read.
    """

    count: int
    rows: dict[str, dict[str, float]]
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"images": self.count, "metrics": self.rows, "skipped": self.skipped}


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"evaluation folder {str(root)!r} does not exist or is not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"evaluation folder {str(root)!r} holds no images")
    return files


def _load_256(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        rgb = im.convert("RGB")
    if rgb.size != (EVAL_SIZE, EVAL_SIZE):
        rgb = rgb.resize((EVAL_SIZE, EVAL_SIZE), Image.LANCZOS)
    return rgb


#: Per-image PSNR ceiling: a photo that is already gray is reproduced exactly by the gray baseline, and
#: one infinite value would make every mean infinite.
PSNR_CAP = 100.0


def _capped_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return min(psnr(a, b), PSNR_CAP)


def evaluate(
    colorize: Callable[[list[Image.Image]], list[Image.Image]],
    files: Iterable[Path],
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> EvaluationResult:
    """Run the protocol over ``files`` with ``colorize`` (a list of gray PIL images to RGB PIL images).

    Per-image PSNR is capped at ``PSNR_CAP`` dB before averaging (only identical images reach it).
    The chroma recalls are pooled: summed over the pixels of every photo, then divided.
    """
    sums = {
        "model": np.zeros(3),
        "gray baseline": np.zeros(3),
        "ground truth": np.zeros(3),
    }
    recall_sums = {row: {hue: np.zeros(2) for hue in HUES} for row in ("model", "gray baseline")}
    count = 0
    skipped: list[str] = []
    batch: list[tuple[np.ndarray, Image.Image]] = []

    def flush() -> None:
        nonlocal count
        if not batch:
            return
        outputs = colorize([g for _, g in batch])
        for (truth, gray), out in zip(batch, outputs):
            out_arr = np.asarray(out.convert("RGB"))
            gray_arr = np.asarray(gray.convert("RGB"))
            sums["model"] += (_capped_psnr(out_arr, truth), ssim(out_arr, truth), colorfulness(out_arr))
            sums["gray baseline"] += (_capped_psnr(gray_arr, truth), ssim(gray_arr, truth), 0.0)
            sums["ground truth"] += (0.0, 0.0, colorfulness(truth))
            truth_lab = _lab_of(truth.astype(np.float64))  # once for both rows
            for row, arr in (("model", out_arr), ("gray baseline", gray_arr)):
                lab = _lab_of(arr.astype(np.float64))
                for hue, pair in _recall_sums_of_lab(lab, truth_lab, RECALL_THRESHOLD).items():
                    recall_sums[row][hue] += pair
            count += 1
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for path in files:
        try:
            rgb = _load_256(path)
        except Exception as err:  # an unreadable file is reported, not fatal
            skipped.append(f"{path}: {err}")
            if progress is not None:
                progress(1)
            continue
        batch.append((np.asarray(rgb), rgb.convert("L")))
        if len(batch) >= batch_size:
            flush()
    flush()
    if count == 0:
        raise ValueError("no readable images to evaluate")
    rows = {}
    for name, total in sums.items():
        mean = total / count
        rows[name] = {"psnr": float(mean[0]), "ssim": float(mean[1]), "colorfulness": float(mean[2])}
        for hue, (got, want) in recall_sums.get(name, {}).items():
            rows[name][hue] = float(got / want) if want > 0 else float("nan")
    del rows["ground truth"]["psnr"], rows["ground truth"]["ssim"]
    return EvaluationResult(count, rows, skipped)


def format_table(result: EvaluationResult) -> str:
    """A markdown table of the result."""
    lines = [
        f"| {result.count} images, {EVAL_SIZE}x{EVAL_SIZE} | PSNR (dB) | SSIM | colorfulness | green | blue |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(row: dict[str, float], key: str, digits: int) -> str:
        value = row.get(key)
        if value is None or not np.isfinite(value):
            return "-"
        return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.00" for a gray image's zero

    for name, row in result.rows.items():
        cells = [cell(row, "psnr", 2), cell(row, "ssim", 4), cell(row, "colorfulness", 1)]
        cells += [cell(row, hue, 2) for hue in HUES]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)
