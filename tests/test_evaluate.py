"""Tests for agincolor.evaluate: the protocol's rows, pooling and table, with a stand-in colorizer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agincolor.evaluate import evaluate, format_table, list_images
from agincolor.metrics import chroma_recall

GREEN = (40, 150, 50)
BLUE = (60, 110, 220)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """A field (all green) and a sky over gray ground (top half blue), at the protocol's 256x256."""
    field = np.full((256, 256, 3), GREEN, dtype=np.uint8)
    sky = np.full((256, 256, 3), 128, dtype=np.uint8)
    sky[:128] = BLUE
    Image.fromarray(field).save(tmp_path / "a_field.png")
    Image.fromarray(sky).save(tmp_path / "b_sky.png")
    return tmp_path


def _paint(colour: tuple[int, int, int]):
    def colorize(grays: list[Image.Image]) -> list[Image.Image]:
        return [Image.new("RGB", g.size, colour) for g in grays]

    return colorize


def test_chroma_recalls_are_pooled_over_photos_and_zero_for_the_gray_baseline(photos: Path) -> None:
    files = list_images(photos)
    result = evaluate(_paint(GREEN), files)
    model, gray = result.rows["model"], result.rows["gray baseline"]
    # Painting everything green restores the field in full; the sky turns green, against its blue.
    assert model["green"] == pytest.approx(1.0, abs=1e-6)
    sky = np.asarray(Image.open(files[1]).convert("RGB"))
    assert model["blue"] == pytest.approx(chroma_recall(np.full_like(sky, GREEN), sky, "blue"), rel=1e-6)
    assert model["blue"] < 0
    assert gray["green"] == pytest.approx(0.0, abs=1e-6) and gray["blue"] == pytest.approx(0.0, abs=1e-6)
    assert set(result.rows["ground truth"]) == {"colorfulness"}


def test_a_hue_no_photo_has_is_nan_and_shown_as_a_dash(photos: Path) -> None:
    files = [p for p in list_images(photos) if p.name == "a_field.png"]
    result = evaluate(_paint(GREEN), files)
    assert math.isnan(result.rows["model"]["blue"])
    table = format_table(result)
    assert table.splitlines()[0].endswith("| green | blue |")
    assert "| model | " in table and table.splitlines()[2].endswith("| 1.00 | - |")
    assert "-0.00" not in table  # the gray baseline's zero, whatever its rounding sign
