"""The training command line: the documented ``--image-size`` flag beside ``--crop-size`` and recipes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agincolor.train import TrainConfig
from agincolor.train.cli import config_from_args, load_size_for, parse_args

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "train_cyclegan.py"


def _config(argv: list[str]) -> TrainConfig:
    return config_from_args(parse_args(argv)[1])


def test_the_documented_command_sets_the_paper_crop_and_load_sizes() -> None:
    config = _config(["--data", "photos", "--out", "runs/x", "--image-size", "256"])
    assert (config.crop_size, config.load_size) == (256, 286)
    assert (config.data, config.out) == ("photos", "runs/x")


def test_image_size_scales_the_load_size_as_the_paper_does() -> None:
    assert load_size_for(256) == 286
    assert load_size_for(128) == 143
    config = _config(["--data", "d", "--image-size", "64"])
    assert (config.crop_size, config.load_size) == (64, 72)


def test_an_explicit_load_size_wins_over_the_one_image_size_implies() -> None:
    config = _config(["--data", "d", "--image-size", "64", "--load-size", "80"])
    assert (config.crop_size, config.load_size) == (64, 80)


@pytest.mark.parametrize("flags", [["--crop-size", "128"], ["--crop-size=128"], ["--crop", "128"]])
def test_image_size_with_crop_size_is_a_usage_error(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["--data", "d", "--image-size", "64", *flags])
    assert exc.value.code == 2
    assert "--image-size and --crop-size" in capsys.readouterr().err


def test_image_size_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--image-size", "0"])
    assert "--image-size must be a positive integer" in capsys.readouterr().err


def test_without_image_size_crop_and_load_sizes_are_unchanged() -> None:
    config = _config(["--data", "d", "--crop-size", "48", "--load-size", "52"])
    assert (config.crop_size, config.load_size) == (48, 52)
    plain = _config(["--data", "d"])
    assert (plain.crop_size, plain.load_size) == (TrainConfig().crop_size, TrainConfig().load_size)


def test_image_size_overrides_a_recipes_crop_and_load_sizes(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('data = "photos"\ncrop_size = 128\nload_size = 150\n')
    from_recipe = _config(["--config", str(recipe)])
    assert (from_recipe.crop_size, from_recipe.load_size) == (128, 150)
    overridden = _config(["--config", str(recipe), "--image-size", "64"])
    assert (overridden.crop_size, overridden.load_size) == (64, 72)
    # A recipe's crop size is a default, not a flag: only the command line's --crop-size conflicts.
    with pytest.raises(SystemExit):
        parse_args(["--config", str(recipe), "--image-size", "64", "--crop-size", "32"])


def test_the_example_script_accepts_image_size() -> None:
    """The documented script itself parses the flag (its --help lists it; a conflict exits 2)."""
    env = {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0 and "--image-size" in shown.stdout
    clash = subprocess.run(
        [sys.executable, str(EXAMPLE), "--data", "d", "--out", "o", "--image-size", "256", "--crop-size", "256"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert clash.returncode == 2 and "--image-size and --crop-size" in clash.stderr


def test_distill_from_takes_a_comma_separated_list_from_flags_or_a_recipe(tmp_path: Path) -> None:
    flags = ["--data", "d", "--paired-loss", "ab-bins", "--paired-weight", "1", "--adv-weight", "0", "--cycle-weight", "0"]
    flags += ["--content-weight", "0", "--cam-weight", "0"]
    config = _config([*flags, "--distill-from", "runs/a, runs/b", "--distill-flip", "--distill-weight", "0.5"])
    assert (config.distill_from, config.distill_flip, config.distill_weight) == (("runs/a", "runs/b"), True, 0.5)
    assert _config(flags).distill_from == ()
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('distill_from = ["runs/a"]\n')
    assert _config(["--config", str(recipe), *flags]).distill_from == ("runs/a",)
