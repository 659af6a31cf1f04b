"""The example scripts run as documented: reuse_agin trains, colorize_folder writes PNGs without overwriting."""

from __future__ import annotations

import importlib.util
import re
import runpy
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from agincolor.colorizer import Colorizer

# Colour photos are recoloured here on purpose: their "already has colour" warning is tested in
# test_colour_inputs_warn_naming_the_file (test_colorizer.py).
pytestmark = pytest.mark.filterwarnings("ignore:.*already has colour:UserWarning")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reuse_agin_example_lowers_the_loss_and_keeps_rho_in_unit_interval(capsys):
    runpy.run_path(str(EXAMPLES / "reuse_agin.py"), run_name="__main__")
    out = capsys.readouterr().out
    losses = [float(v) for v in re.findall(r"^step +\d+ +loss ([\d.]+)$", out, flags=re.M)]
    assert len(losses) >= 2 and losses[-1] < 0.5 * losses[0]
    rho_lines = [line for line in out.splitlines() if "rho after clip_rho_" in line]
    assert [line.split()[0] for line in rho_lines] == ["AGIN", "GIN"]
    for line in rho_lines:
        values = [float(v) for v in line.split(":")[1].split()]
        assert values and all(0.0 <= v <= 1.0 for v in values)


def test_colorize_folder_example_writes_pngs_at_mirrored_paths_and_never_overwrites(tmp_path, capsys):
    model = tmp_path / "model"
    Colorizer(generator=dict(base_channels=8, num_groups=8, num_blocks=1), working_size=32).save_pretrained(model)
    photos, out = tmp_path / "photos", tmp_path / "out"
    (photos / "trip").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 32, 3), dtype=np.uint8)).save(photos / "trip" / "beach.jpg")
    Image.fromarray(rng.integers(0, 256, (32, 48), dtype=np.uint8), mode="L").save(photos / "door.png")
    (photos / "readme.txt").write_text("ignored")
    (out / "trip").mkdir(parents=True)
    (out / "trip" / "beach.png").write_bytes(b"an earlier result")

    example = load_example("colorize_folder")
    argv = [str(photos), str(out), "--model", str(model), "--batch-size", "2"]
    assert example.main(argv) == 0
    assert "2 images, 1 already colorized" in capsys.readouterr().out
    assert (out / "trip" / "beach.png").read_bytes() == b"an earlier result"
    with Image.open(out / "door.png") as image:
        assert (image.format, image.size) == ("PNG", (48, 32))
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["beach.png", "door.png"]
