"""has_colour: colour photos are colour; gray, toned (sepia, cyanotype), cast and noisy grays are not."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agincolor import colour_measure, has_colour
from agincolor.image_processor import COLOUR_THRESHOLD

REPO = Path(__file__).resolve().parents[1]
BSDS = REPO.parent / "shared" / "data" / "val" / "bsds500"  # beside the clone, as in CI

_spec = importlib.util.spec_from_file_location("colour_bar", REPO / "scripts" / "colour_bar.py")
colour_bar = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colour_bar)  # type: ignore[union-attr]


def _lab_to_srgb_u8(lab: np.ndarray) -> np.ndarray:
    """(..., 3) CIELAB -> uint8 sRGB, clipped (an independent textbook conversion, for making test images)."""
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (L + 16) / 116
    f = np.stack([fy + a / 500, fy, fy - b / 200], -1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * np.array([0.95047, 1.0, 1.08883])
    m = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]])
    lin = np.clip(xyz @ m.T, 0, 1)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)


def _sunset(seed: int, size: tuple[int, int] = (120, 160)) -> np.ndarray:
    """A made-up sunset: an orange-to-violet sky whose hue also shifts away from the sun, a sun, a dark sea
    with an orange glitter path, a black shore; noise and JPEG as a camera gives."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    horizon = 0.6 + 0.05 * rng.random()
    sun_x = 0.2 + 0.6 * rng.random()
    lab = np.zeros((h, w, 3))
    up = np.clip((horizon - y) / horizon, 0, 1)  # 0 at the horizon, 1 at the top
    lab[..., 0] = 78 - 50 * up
    hue = np.deg2rad(70 - 60 * up - 40 * np.abs(x - sun_x))  # yellow-orange low and near the sun, red-violet away
    chroma = 55 + 10 * rng.random()
    lab[..., 1], lab[..., 2] = chroma * np.cos(hue), chroma * np.sin(hue)
    sun = (x - sun_x) ** 2 * (w / h) ** 2 + (y - horizon + 0.06) ** 2 < 0.004
    lab[sun] = (96, 2, 30)
    sea = y > horizon
    depth = (y - horizon) / (1 - horizon)
    lab[..., 0] = np.where(sea, 35 - 15 * depth, lab[..., 0])
    lab[..., 1] = np.where(sea, 10, lab[..., 1])
    lab[..., 2] = np.where(sea, -30, lab[..., 2])
    glitter = sea & (np.abs(x - sun_x) < 0.04 + 0.1 * depth) & (rng.random((h, w)) < 0.5)
    lab[glitter] = (60, 30, 55)
    shore = y > 0.92
    lab[shore] = (8, 0, 0)
    rgb = _lab_to_srgb_u8(lab).astype(np.float64) + rng.normal(0, 3, (h, w, 3))
    return colour_bar.as_jpeg(np.clip(rgb, 0, 255).astype(np.uint8), quality=80)


def _forest(seed: int, size: tuple[int, int] = (120, 160)) -> np.ndarray:
    """Mostly green foliage of many lightnesses and greens, brown trunks, a few sky gaps."""
    rng = np.random.default_rng(seed)
    h, w = size
    blobs = rng.random((h // 8 + 1, w // 8 + 1))
    lightness = np.kron(blobs, np.ones((8, 8)))[:h, :w] * 50 + 20
    lab = np.stack([lightness, -25 - 20 * rng.random((h, w)), 25 + 25 * rng.random((h, w))], -1)
    for x0 in rng.integers(0, w - 6, size=4):
        lab[:, x0 : x0 + 5] = (30, 12, 22)
    gaps = np.kron(rng.random((h // 16 + 1, w // 16 + 1)) > 0.9, np.ones((16, 16), bool))[:h, :w]
    lab[gaps] = (80, -5, -25)
    return colour_bar.as_jpeg(_lab_to_srgb_u8(lab), quality=85)


def _noisy_gray(seed: int, size: tuple[int, int] = (120, 160)) -> np.ndarray:
    """A gray scene with film grain (the same in each channel) and a scanner's per-channel noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    scene = np.kron(rng.random((h // 10 + 1, w // 10 + 1)), np.ones((10, 10)))[:h, :w] * 200 + 25
    grain = rng.normal(0, 12, (h, w, 1))
    sensor = rng.normal(0, 3, (h, w, 3))
    return np.clip(scene[..., None] + grain + sensor, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(8))
def test_made_up_sunsets_dominated_by_one_hue_are_colour(seed: int) -> None:
    assert has_colour(_sunset(seed)), colour_measure(_sunset(seed))


@pytest.mark.parametrize("seed", range(4))
def test_made_up_forests_are_colour(seed: int) -> None:
    assert has_colour(_forest(seed))


@pytest.mark.parametrize("seed", range(8))
def test_noisy_grays_are_gray(seed: int) -> None:
    noisy = _noisy_gray(seed)
    assert not has_colour(noisy), colour_measure(noisy)
    assert not has_colour(Image.fromarray(noisy))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ramp", ["SEPIA", "CYANOTYPE"])
def test_toned_prints_of_noisy_scenes_are_gray(seed: int, ramp: str) -> None:
    gray = _noisy_gray(seed)[..., 0]
    toned = colour_bar.tone(gray, getattr(colour_bar, ramp))
    assert not has_colour(toned), colour_measure(toned)
    scanned = colour_bar.as_jpeg(toned, quality=95)
    assert not has_colour(scanned), colour_measure(scanned)


def test_yellowed_paper_and_a_scanner_cast_are_gray() -> None:
    gray = _noisy_gray(0)[..., 0]
    assert not has_colour(colour_bar.with_cast(gray, (10, 6, -12)))
    # Yellowing strongest in the paper's highlights: a tone that depends on lightness.
    yellowed = colour_bar.tone(gray, np.array([(20, 20, 20), (128, 122, 104), (240, 226, 180)], dtype=np.float64))
    assert not has_colour(yellowed)


def test_one_channel_images_measure_zero_in_every_kind(tmp_path: Path) -> None:
    gray = _noisy_gray(1)[..., 0]
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    for image in (gray, gray[..., None], Image.fromarray(gray), Image.fromarray(gray).convert("LA"), path, str(path)):
        assert colour_measure(image) == 0.0 and not has_colour(image)


def test_colour_in_every_input_kind(tmp_path: Path) -> None:
    rgb = _forest(1)
    path = tmp_path / "forest.png"
    Image.fromarray(rgb).save(path)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    kinds = [rgb, rgba, rgb.astype(np.float32) / 255, rgb.astype(np.uint16) * 257, Image.fromarray(rgb), path]
    measures = [colour_measure(k) for k in kinds]
    assert all(m > COLOUR_THRESHOLD for m in measures)
    assert max(measures) - min(measures) < 0.05  # the same photo measures the same in every kind


def test_bad_inputs_and_thresholds_give_clear_errors() -> None:
    with pytest.raises(TypeError, match="list"):
        colour_measure([1, 2, 3])
    with pytest.raises(ValueError, match="shape"):
        colour_measure(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(TypeError, match="int32"):
        colour_measure(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(ValueError, match="threshold"):
        has_colour(np.zeros((4, 4, 3), np.uint8), threshold=-1)


def test_a_higher_threshold_calls_fewer_photos_colour() -> None:
    sunset = _sunset(0)
    assert has_colour(sunset, threshold=0.0)
    assert not has_colour(sunset, threshold=colour_measure(sunset))


@pytest.mark.slow
@pytest.mark.skipif(not BSDS.is_dir(), reason="needs ../shared/data/val/bsds500 beside the clone")
def test_the_bar_on_the_500_bsds500_photos() -> None:
    """At least 99% of the photos count as colour, and 99% of each gray-looking version as gray."""
    files = sorted(BSDS.glob("*.jpg"))
    assert len(files) == 500
    right: dict[str, list[bool]] = {}
    for path in files:
        with Image.open(path) as photo:
            for name, rgb in colour_bar.versions(photo).items():
                right.setdefault(name, []).append(has_colour(rgb) == (name == "colour"))
    shares = {name: float(np.mean(values)) for name, values in right.items()}
    assert all(share >= 0.99 for share in shares.values()), shares
