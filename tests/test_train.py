"""Tests for agincolor.train: learning, the paper's loss terms, resume, checkpoints, bad data, DDP, export.

Every run is tiny (generator width 8, one block, 32x32 crops of 40x40 synthetic images) so the whole
file fits in a few minutes on two busy CPU cores.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from agincolor import AGIN, Colorizer, GroupInstanceNorm
from agincolor.color import ab_bin_centers, ab_bin_index, ab_from_bin_logits, lab_to_rgb, rgb_to_lab
from agincolor.generator import AB_SCALE
from agincolor.train import CHECKPOINT_NAME, TrainConfig, Trainer, export_generator, to_gray
from agincolor.train.losses import (
    ChromaRebalance,
    adversarial_loss,
    decibel_error,
    distill_loss,
    paired_loss,
    soft_bin_targets,
)

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
EXAMPLE = REPO / "examples" / "train_cyclegan.py"

LOSS_TERMS = ("g_total", "g_adv", "g_cycle", "g_content", "g_cam", "g_paired", "d_total")

TINY: dict[str, Any] = dict(
    base_channels=8,
    num_groups=4,
    num_blocks=1,
    d_base_channels=8,
    d_local_layers=3,
    d_global_layers=4,
    d_max_channels=32,
    crop_size=32,
    load_size=36,
    workers=0,
    device="cpu",
    log_every=1,
    sample_every=1000,
    checkpoint_every=1000,
)

TINY_FLAGS = [
    "--base-channels", "8", "--num-groups", "4", "--num-blocks", "1",
    "--d-base-channels", "8", "--d-local-layers", "3", "--d-global-layers", "4", "--d-max-channels", "32",
    "--crop-size", "32", "--load-size", "36", "--workers", "0", "--no-progress", "--device", "cpu",
    "--log-every", "1",
]  # fmt: skip

# A shared colour ramp (dark blue, red, yellow) indexed by position: every image has a different gradient,
# but colour is a function of luminance, so a generator can learn gray -> colour from a few images.
_RAMP = np.array([(20, 30, 120), (200, 40, 40), (250, 230, 60)], dtype=np.float64)


def _ramp_image(k: int, size: int = 40) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    angle = k * math.pi / 4
    t = ((math.cos(angle) * (xx - 0.5) + math.sin(angle) * (yy - 0.5)) * 0.9 + 0.5).clip(0, 1)
    segment = (t >= 0.5).astype(int)
    frac = np.where(t < 0.5, t * 2, t * 2 - 1)[..., None]
    rgb = _RAMP[segment] * (1 - frac) + _RAMP[segment + 1] * frac
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8))


def _write_images(folder: Path, count: int = 6, jpeg: bool = True) -> list[Path]:
    """``count`` smooth 40x40 colour images in ``folder``; every other one a JPEG when ``jpeg``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        path = folder / (f"img{k}.jpg" if jpeg and k % 2 else f"img{k}.png")
        if path.suffix == ".jpg":
            _ramp_image(k).save(path, quality=95)
        else:
            _ramp_image(k).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    _write_images(tmp_path / "data")
    return tmp_path / "data"


def _config(data: Path, out: Path, **overrides: Any) -> TrainConfig:
    return TrainConfig(data=str(data), out=str(out), **{**TINY, **overrides})


def _batch(trainer: Trainer, indices: range | list[int], seed: int = 0) -> torch.Tensor:
    return torch.stack([trainer.color_data[(i, seed)][0] for i in indices])


def _read_log(out: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _rhos(module: torch.nn.Module) -> list[torch.Tensor]:
    return [m.rho.detach() for m in module.modules() if isinstance(m, (AGIN, GroupInstanceNorm))]


def _grads(params: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in params]


def _same_grads(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> bool:
    def same(x: torch.Tensor | None, y: torch.Tensor | None) -> bool:
        return x is None and y is None or (x is not None and y is not None and torch.equal(x, y))

    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))


def _subprocess_env() -> dict[str, str]:
    inherited = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["OMP_NUM_THREADS"] = "1"
    env["COLUMNS"] = "200"
    return env


# ----------------------------------------------------------------------------------------- learning
def test_tiny_model_halves_its_l1_error_in_paired_mode(data_dir: Path, tmp_path: Path) -> None:
    config = _config(
        data_dir, tmp_path / "out", steps=40, batch_size=2, lr=1e-3,
        paired_weight=100.0, adv_weight=0.1, cycle_weight=0.0, content_weight=0.0, cam_weight=0.0,
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    assert trainer.G_c is None and trainer.D_g is None  # cycle_weight 0 builds no reverse networks
    y = _batch(trainer, range(len(trainer.color_data)))

    def error() -> float:
        with torch.no_grad():
            return float((trainer.G_g(to_gray(y)).image - y).abs().mean())

    before = error()
    trainer.train()
    after = error()
    assert after <= 0.5 * before, f"L1 went from {before:.4f} to only {after:.4f} in {config.steps} steps"
    log = _read_log(tmp_path / "out")
    assert [r["step"] for r in log] == list(range(1, config.steps + 1))
    assert log[-1]["g_paired"] < 0.5 * log[0]["g_paired"]


def test_supervised_mode_builds_no_discriminator_and_lowers_the_colorizer_error(
    data_dir: Path, tmp_path: Path
) -> None:
    config = _config(
        data_dir, tmp_path / "out", steps=30, batch_size=2, lr=1e-3, paired_loss="chroma-l2",
        paired_weight=1.0, adv_weight=0.0, cycle_weight=0.0, content_weight=0.0, cam_weight=0.0,
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    assert trainer.D_c is None and trainer.D_g is None and trainer.G_c is None and trainer.opt_d is None
    y = _batch(trainer, range(len(trainer.color_data)))

    def error() -> float:
        with torch.no_grad():
            return float(paired_loss(trainer.G_g(to_gray(y)).image, y, "chroma-l2"))

    before = error()
    trainer.train()
    assert error() <= 0.5 * before
    log = _read_log(tmp_path / "out")
    assert all(r["d_total"] == 0 and r["g_adv"] == 0 for r in log)
    assert log[-1]["g_paired"] < log[0]["g_paired"]
    # Checkpoints of a run without discriminators hold no discriminator state, and resume.
    state = torch.load(tmp_path / "out" / CHECKPOINT_NAME, weights_only=True)
    assert set(state["networks"]) == {"G_g"} and set(state["optimizers"]) == {"G"}
    resumed = Trainer(dataclasses.replace(config, steps=32), resume=True, progress=False)
    assert resumed.step == 30
    resumed.train()
    assert _read_log(tmp_path / "out")[-1]["step"] == 32


def test_cycle_without_adversary_still_trains_the_reverse_generator(data_dir: Path, tmp_path: Path) -> None:
    config = _config(
        data_dir, tmp_path / "out", steps=1, batch_size=2, paired_weight=1.0, adv_weight=0.0, cycle_weight=9.0
    )
    trainer = Trainer(config, progress=False)
    assert trainer.G_c is not None and trainer.D_g is None and trainer.D_c is None
    terms = trainer.train_step(_batch(trainer, range(2)))
    assert terms["g_cycle"] > 0 and terms["g_adv"] == 0 and terms["d_total"] == 0
    assert all(p.grad is not None for p in trainer.G_c.parameters() if p.requires_grad)


def test_chroma_paired_losses_ignore_the_output_lightness() -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 16, 16) * 0.3 + 0.35  # muted colours: a lightness change stays in gamut
    lab = rgb_to_lab(y)
    darker = lab_to_rgb(torch.cat([lab[:, :1] * 0.85, lab[:, 1:]], dim=1))  # same ab, other L
    other = y.flip(-1)  # other chroma
    for kind in ("chroma-l1", "chroma-l2"):
        assert float(paired_loss(y * 2 - 1, y * 2 - 1, kind)) < 1e-6
        assert float(paired_loss(darker * 2 - 1, y * 2 - 1, kind)) < 2e-3
        assert float(paired_loss(other * 2 - 1, y * 2 - 1, kind)) > 10 * float(paired_loss(darker * 2 - 1, y * 2 - 1, kind))
    # The image L1 does see the lightness change.
    assert float(paired_loss(darker * 2 - 1, y * 2 - 1, "rgb-l1")) > 0.02
    pred = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_()
    paired_loss(pred, y * 2 - 1, "chroma-l2").backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="paired loss"):
        paired_loss(pred, y, "ssim")


def _uniform_lab_image(l: float, a: float, b: float, size: int = 4) -> torch.Tensor:
    """A (1, 3, size, size) image in [-1, 1] of one CIELAB colour."""
    lab = torch.tensor([l, a, b], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, size, size)
    return (lab_to_rgb(lab).float() * 2 - 1).contiguous()


def test_chroma_rebalance_favours_rare_colours_and_averages_one_over_its_data() -> None:
    common = _uniform_lab_image(55, 5, 15, size=8)  # a brown: most of the "data"
    rare = _uniform_lab_image(55, -30, 35, size=2)  # a green: a few pixels
    counts = ChromaRebalance.histogram(common) + ChromaRebalance.histogram(rare)
    assert counts.sum() == 64 + 4
    weights = ChromaRebalance.from_histogram(counts, sigma=0.0, power=1.0)
    w_common, w_rare = float(weights(common).mean()), float(weights(rare).mean())
    # Two bins used: w_q proportional to 1 / (0.5 * p_q + 0.5 / 2).
    assert w_rare / w_common == pytest.approx((0.5 * 64 / 68 + 0.25) / (0.5 * 4 / 68 + 0.25), rel=1e-4)
    assert w_rare > 2 * w_common
    # Scaled so that a pixel drawn from the data has expected weight 1.
    assert (64 * w_common + 4 * w_rare) / 68 == pytest.approx(1.0, rel=1e-5)
    gentle = ChromaRebalance.from_histogram(counts, sigma=0.0, power=0.5)
    ratio = float(gentle(rare).mean()) / float(gentle(common).mean())
    assert ratio == pytest.approx(math.sqrt(w_rare / w_common), rel=1e-4)
    flat = ChromaRebalance.from_histogram(counts, power=0.0)
    assert torch.allclose(flat(torch.cat([common[..., :2, :2], rare])), torch.ones(2, 1, 2, 2))
    # Blurring the prior spreads weight to neighbouring bins but keeps the order.
    blurred = ChromaRebalance.from_histogram(counts, sigma=10.0)
    assert float(blurred(rare).mean()) > float(blurred(common).mean())
    assert weights(common).shape == (1, 1, 8, 8)


def test_chroma_rebalance_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        ChromaRebalance.from_histogram(torch.zeros(22, 22))
    with pytest.raises(ValueError, match="mix"):
        ChromaRebalance.from_histogram(torch.ones(22, 22), mix=1.5)
    with pytest.raises(ValueError, match="power"):
        ChromaRebalance.from_histogram(torch.ones(22, 22), power=-1.0)
    with pytest.raises(ValueError, match="shape"):
        ChromaRebalance(torch.ones(10, 10))
    with pytest.raises(ValueError, match="no images"):
        ChromaRebalance.from_images([])


def test_pixel_weights_select_which_errors_the_paired_loss_counts() -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 8, 8) * 2 - 1
    pred = y.clone()
    pred[:, :, :, 4:] = pred[:, :, :, 4:].flip(1)  # wrong colours on the right half only
    ones = torch.ones(2, 1, 8, 8)
    left = torch.zeros(2, 1, 8, 8)
    left[..., :4] = 1.0
    for kind in ("rgb-l1", "chroma-l1", "chroma-l2"):
        plain = float(paired_loss(pred, y, kind))
        assert float(paired_loss(pred, y, kind, pixel_weights=ones)) == pytest.approx(plain, rel=1e-5)
        assert float(paired_loss(pred, y, kind, pixel_weights=left)) < 1e-3 * plain
        assert float(paired_loss(pred, y, kind, pixel_weights=1 - left)) == pytest.approx(2 * plain, rel=1e-4)
    with pytest.raises(ValueError, match="pixel_weights"):
        paired_loss(pred, y, "chroma-l2", pixel_weights=torch.ones(2, 3, 8, 8))


def test_rebalanced_supervised_run_writes_timed_snapshots_that_load(data_dir: Path, tmp_path: Path) -> None:
    config = _config(
        data_dir, tmp_path / "out", steps=3, batch_size=2, paired_loss="chroma-l2", paired_weight=1.0,
        adv_weight=0.0, cycle_weight=0.0, content_weight=0.0, cam_weight=0.0, rebalance=0.5,
        rebalance_images=4, snapshot_every=1e-6, export_working_size=48,
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    assert trainer.rebalance is not None
    y = _batch(trainer, range(2))
    assert trainer.rebalance(y).shape == (2, 1, 32, 32)
    trainer.train()
    assert all(math.isfinite(r["g_paired"]) and r["g_paired"] > 0 for r in _read_log(tmp_path / "out"))
    snaps = sorted((tmp_path / "out" / "snapshots").iterdir())
    # A snapshot after every step here (the period is tiny), each named by its time and step.
    assert [p.name.split("-step")[1] for p in snaps] == ["0000001", "0000002", "0000003"]
    last = Colorizer.from_pretrained(snaps[-1])
    final = Colorizer.from_pretrained(tmp_path / "out" / "colorizer")
    assert last.working_size == 48
    for name, tensor in final.generator.state_dict().items():
        assert torch.equal(tensor, last.generator.state_dict()[name]), name


def test_ab_bins_loss_is_the_cross_entropy_of_each_pixels_true_bin() -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 8, 8) * 2 - 1
    true_bins = ab_bin_index(rgb_to_lab((y + 1) / 2)[:, 1:])  # (2, 8, 8)
    right = torch.full((2, 484, 8, 8), -10.0).scatter_(1, true_bins[:, None], 10.0)
    wrong = torch.full((2, 484, 8, 8), -10.0).scatter_(1, (true_bins[:, None] + 1) % 484, 10.0)
    assert float(paired_loss(right, y, "ab-bins")) < 1e-6
    assert float(paired_loss(wrong, y, "ab-bins")) == pytest.approx(20.0, abs=1e-3)  # log-sum-exp margin
    uniform = torch.zeros(2, 484, 8, 8)
    assert float(paired_loss(uniform, y, "ab-bins")) == pytest.approx(math.log(484), rel=1e-5)
    mixed = right.clone()
    mixed[..., 4:] = wrong[..., 4:]  # wrong bins on the right half only
    left = torch.zeros(2, 1, 8, 8)
    left[..., :4] = 1.0
    assert float(paired_loss(mixed, y, "ab-bins", pixel_weights=left)) < 1e-6
    with pytest.raises(ValueError, match="484"):
        paired_loss(y, y, "ab-bins")  # an image where logits belong


def test_ab_bins_mean_weight_adds_the_squared_error_of_the_distributions_mean() -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 8, 8) * 2 - 1
    truth = rgb_to_lab((y + 1) / 2)[:, 1:]
    centers = ab_bin_centers()
    logits = torch.randn(2, 484, 8, 8, requires_grad=True)
    mean = ab_from_bin_logits(logits, centers, 1.0)
    ce = paired_loss(logits, y, "ab-bins")
    both = paired_loss(logits, y, "ab-bins", mean_weight=3.0)
    expected = 3.0 * ((mean - truth) / AB_SCALE).square().mean()
    assert (both - ce).item() == pytest.approx(expected.item(), rel=1e-4)
    # Its gradient moves the decoded colour towards the truth: one step on the scores shrinks its error
    # (the cross-entropy alone pushes one bin up, which need not).
    (paired_loss(logits, y, "ab-bins", mean_weight=1e4) - ce).backward()
    with torch.no_grad():
        stepped = ab_from_bin_logits(logits - 0.5 * logits.grad / logits.grad.abs().max(), centers, 1.0)
        assert (stepped - truth).square().mean() < (mean - truth).square().mean()
    # Weighted pixels: a pixel with weight 0 counts in neither term.
    left = torch.zeros(2, 1, 8, 8)
    left[..., :4] = 1.0
    half = paired_loss(logits[..., :4], y[..., :4], "ab-bins", mean_weight=3.0)
    weighted = paired_loss(logits, y, "ab-bins", pixel_weights=left, mean_weight=3.0)
    assert weighted.item() == pytest.approx(half.item(), rel=1e-5)
    for kind, weight in (("ab-huber", 1.0), ("ab-bins", -1.0)):
        with pytest.raises(ValueError, match="mean_weight"):
            paired_loss(logits, y, kind, mean_weight=weight)


def test_decibel_error_is_each_photos_log_scale_chroma_error() -> None:
    truth = torch.zeros(2, 2, 4, 4)
    ab = truth.clone()
    ab[0, 0] = 3.0  # photo 0: 3 units off in a* everywhere, squared distance 9
    ab[1, 0, :, :2] = 20.0  # photo 1: 20 units off on half its pixels, mean squared distance 200
    got = decibel_error(ab, truth)
    assert got.shape == (2,)
    assert got.tolist() == pytest.approx([10 * math.log10(10.0), 10 * math.log10(201.0)], rel=1e-6)
    assert decibel_error(truth, truth).tolist() == [0.0, 0.0]  # an exact photo is finite: 10 log10(1)
    # Weighted pixels: photo 1 scored on its wrong half only.
    left = torch.zeros(2, 1, 4, 4)
    left[..., :2] = 1.0
    assert decibel_error(ab, truth, left)[1].item() == pytest.approx(10 * math.log10(401.0), rel=1e-6)


def test_ab_bins_decibel_weight_weighs_a_near_gray_photos_error_by_how_little_colour_it_had() -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 8, 8) * 2 - 1
    truth = rgb_to_lab((y + 1) / 2)[:, 1:]
    logits = torch.randn(2, 484, 8, 8)
    mean = ab_from_bin_logits(logits, ab_bin_centers(), 1.0)
    ce = paired_loss(logits, y, "ab-bins")
    both = paired_loss(logits, y, "ab-bins", decibel_weight=0.5)
    assert (both - ce).item() == pytest.approx(0.5 * decibel_error(mean, truth).mean().item(), rel=1e-4)
    # Photo 0 is 2 units off, photo 1 is 20 off: a squared error pulls ten times harder on photo 1, the
    # decibel error eight times harder on photo 0 (2 * 2 / (1 + 4) against 2 * 20 / (1 + 400)).
    offset = torch.tensor([2.0, 20.0]).view(2, 1, 1, 1).expand(2, 1, 8, 8)
    ab = torch.cat([offset, torch.zeros_like(offset)], dim=1).requires_grad_(True)
    decibel_error(ab, torch.zeros(2, 2, 8, 8)).sum().backward()
    pull = ab.grad[:, 0].abs().mean(dim=(1, 2))
    assert (pull[0] / pull[1]).item() == pytest.approx((4 / 5) / (40 / 401), rel=1e-4)
    for kind, weight in (("ab-huber", 1.0), ("ab-bins", -1.0)):
        with pytest.raises(ValueError, match="decibel_weight"):
            paired_loss(logits, y, kind, decibel_weight=weight)


def test_soft_bin_targets_centre_on_the_true_colour_and_shrink_to_its_bin() -> None:
    torch.manual_seed(0)
    ab = (torch.rand(2, 2, 6, 6) * 2 - 1) * 100
    ab[0, :, 0, 0] = torch.tensor([109.9, -109.9])  # a grid corner: neighbours off the grid get nothing
    centers = ab_bin_centers()
    index, weight = soft_bin_targets(ab, 5.0)
    assert index.shape == weight.shape == (2, 9, 6, 6)
    assert torch.allclose(weight.sum(dim=1), torch.ones(2, 6, 6))
    assert int(index.min()) >= 0 and int(index.max()) < 484
    assert float(weight[0, :, 0, 0].count_nonzero()) == 4
    # The target's mean lies near the true colour, far nearer than the one bin's centre (up to 5 units
    # per axis away); its home bin carries the most weight.
    mean = (weight.unsqueeze(-1) * centers[index]).sum(dim=1).permute(0, 3, 1, 2)
    home = ab_bin_index(ab)
    hard = centers[home].permute(0, 3, 1, 2)
    inside = (ab.abs() < 100).all(dim=1, keepdim=True).expand_as(ab)
    assert (mean - ab)[inside].abs().mean() < 0.5 * (hard - ab)[inside].abs().mean()
    assert torch.equal(index.gather(1, weight.argmax(dim=1, keepdim=True)).squeeze(1), home)
    # A tiny sigma is the hard target: all weight on the home bin (no underflow to an empty target).
    index, weight = soft_bin_targets(ab, 0.01)
    assert torch.allclose((weight * (index == home.unsqueeze(1))).sum(dim=1), torch.ones(2, 6, 6), atol=1e-3)
    with pytest.raises(ValueError, match="sigma"):
        soft_bin_targets(ab, 0.0)


def test_ab_bins_soft_sigma_scores_the_soft_target() -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 8, 8) * 2 - 1
    logits = torch.randn(2, 484, 8, 8)
    assert paired_loss(logits, y, "ab-bins", soft_sigma=0.01).item() == pytest.approx(
        paired_loss(logits, y, "ab-bins").item(), rel=1e-6
    )
    index, weight = soft_bin_targets(rgb_to_lab((y + 1) / 2)[:, 1:], 5.0)
    # Scores that are the soft target's own log-probabilities reach its minimum, its entropy; the hard
    # target's scores, all on the home bin, pay for the neighbours they leave out.
    matched = torch.full((2, 484, 8, 8), -30.0).scatter_(1, index, weight.clamp_min(1e-12).log())
    entropy = -(weight * weight.clamp_min(1e-12).log()).sum(dim=1).mean()
    assert paired_loss(matched, y, "ab-bins", soft_sigma=5.0).item() == pytest.approx(entropy.item(), abs=1e-4)
    home = torch.full((2, 484, 8, 8), -30.0).scatter_(1, ab_bin_index(rgb_to_lab((y + 1) / 2)[:, 1:])[:, None], 0.0)
    assert paired_loss(home, y, "ab-bins", soft_sigma=5.0) > paired_loss(matched, y, "ab-bins", soft_sigma=5.0) + 1
    left = torch.zeros(2, 1, 8, 8)
    left[..., :4] = 1.0
    half = paired_loss(logits[..., :4], y[..., :4], "ab-bins", soft_sigma=5.0)
    assert paired_loss(logits, y, "ab-bins", pixel_weights=left, soft_sigma=5.0).item() == pytest.approx(half.item())
    for kind, sigma in (("ab-huber", 5.0), ("ab-bins", -1.0)):
        with pytest.raises(ValueError, match="soft_sigma"):
            paired_loss(logits, y, kind, soft_sigma=sigma)


def test_distill_loss_is_the_kl_divergence_from_the_teachers_distribution() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 484, 3, 5)
    own = torch.softmax(logits, dim=1)
    assert float(distill_loss(logits, own)) == pytest.approx(0.0, abs=1e-5)
    assert float(distill_loss(logits + 7.0, own)) == pytest.approx(0.0, abs=1e-5)  # scores, not probabilities
    teacher = torch.softmax(2 * torch.randn(2, 484, 3, 5), dim=1)
    kl = (teacher * (teacher.log() - torch.log_softmax(logits, dim=1))).sum(dim=1).mean()
    assert float(distill_loss(logits, teacher)) == pytest.approx(float(kl), rel=1e-5)
    assert float(kl) > 0.1
    # Its gradient is the soft-target cross-entropy's: (student - teacher) per pixel, over the pixel count.
    logits.requires_grad_(True)
    distill_loss(logits, teacher).backward()
    assert torch.allclose(logits.grad, (own - teacher) / 30, atol=1e-7)
    with pytest.raises(ValueError, match="shape"):
        distill_loss(logits[:, :100], teacher)



@pytest.mark.parametrize(
    "loss",
    [
        lambda s, y, t: paired_loss(s, y, "ab-bins"),
        lambda s, y, t: paired_loss(s, y, "ab-bins", soft_sigma=5.0),
        lambda s, y, t: distill_loss(s, t),
    ],
    ids=["cross-entropy", "soft-targets", "distill"],
)
def test_bin_losses_of_channels_last_scores_match_the_contiguous_ones(loss: Any) -> None:
    # A channels-last generator's scores take the row-wise path (no layout copy); same values, same gradient.
    torch.manual_seed(0)
    y = torch.rand(2, 3, 6, 10) * 2 - 1
    scores = 3 * torch.randn(2, 484, 6, 10)
    teacher = torch.softmax(torch.randn(2, 484, 6, 10), dim=1)
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        s = scores.clone().contiguous(memory_format=layout).requires_grad_(True)
        value = loss(s, y, teacher)
        value.backward()
        results.append((float(value.detach()), s.grad))
    assert not results[0][1].is_contiguous(memory_format=torch.channels_last)
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    assert results[0][0] > 0.5
    assert torch.allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-9)

BINS_RUN: dict[str, Any] = dict(
    paired_loss="ab-bins", paired_weight=1.0, adv_weight=0.0, cycle_weight=0.0, content_weight=0.0, cam_weight=0.0
)


def test_distillation_scores_the_teachers_mirrored_average_and_pulls_the_student_to_it(
    data_dir: Path, tmp_path: Path
) -> None:
    Trainer(_config(data_dir, tmp_path / "teacher", steps=4, batch_size=2, lr=1e-2, **BINS_RUN), progress=False).train()
    folder = tmp_path / "teacher" / "colorizer"
    config = _config(
        data_dir, tmp_path / "student", steps=30, batch_size=3, lr=5e-3, seed=1, bins_stride=2,
        **{**BINS_RUN, "paired_weight": 1e-6}, distill_from=(str(folder),), distill_flip=True,
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    teacher = Colorizer.from_pretrained(folder).generator.eval()
    x = to_gray(_batch(trainer, range(3)))
    with torch.no_grad():
        seen = torch.softmax(teacher(x).image, dim=1)
        mirrored = torch.softmax(teacher(x.flip(-1)).image, dim=1).flip(-1)
    both = (seen + mirrored) / 2
    assert (seen - mirrored).abs().max() > 1e-3  # the mirrored view is a second opinion, not the same one
    # At the pixels the paired term scores, from any offset: the strided teacher gives the full map's values.
    for dy, dx in itertools.product((0, 1), repeat=2):
        assert torch.allclose(trainer._teacher_probs(x, (dy, dx)), both[:, :, dy::2, dx::2], atol=1e-6), (dy, dx)
    assert torch.allclose(trainer._teacher_probs(x, None), both, atol=1e-6)
    frozen = copy.deepcopy(trainer.teachers[0].state_dict())
    trainer.train()
    distill = [r["g_distill"] for r in _read_log(tmp_path / "student")]
    assert len(distill) == 30 and all(math.isfinite(v) for v in distill)
    assert sum(distill[-5:]) < 0.5 * sum(distill[:5])  # the student moved to the teacher's distribution
    teacher_after = trainer.teachers[0]
    assert all(torch.equal(v, teacher_after.state_dict()[k]) for k, v in frozen.items())
    assert not teacher_after.head._forward_pre_hooks and not any(p.requires_grad for p in teacher_after.parameters())


def test_distillation_refuses_a_teacher_that_does_not_predict_the_runs_bins(data_dir: Path, tmp_path: Path) -> None:
    Trainer(_config(data_dir, tmp_path / "image", steps=1, paired_weight=1.0, adv_weight=0.0, cycle_weight=0.0), progress=False).train()
    config = _config(data_dir, tmp_path / "student", steps=1, **BINS_RUN, distill_from=(str(tmp_path / "image" / "colorizer"),))
    with pytest.raises(ValueError, match="distill-from .*predicts an image"):
        Trainer(config, progress=False)


def test_fresh_ab_bins_run_starts_its_output_layer_at_the_colour_prior(data_dir: Path, tmp_path: Path) -> None:
    config = _config(
        data_dir, tmp_path / "bins", steps=1, paired_loss="ab-bins", paired_weight=1.0, adv_weight=0.0,
        cycle_weight=0.0, content_weight=0.0, cam_weight=0.0, rebalance_images=4,
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    counts = trainer._colour_counts().flatten()
    prior = (counts + 1) / (counts.sum() + counts.numel())
    assert int(trainer.G_g.head[0].bias.argmax()) == int(counts.argmax())
    assert torch.allclose(trainer.G_g.head[0].bias.double(), prior.log(), atol=1e-4)
    y = _batch(trainer, range(len(trainer.color_data)))
    with torch.no_grad():  # better than uniform scores
        assert float(paired_loss(trainer.G_g(to_gray(y)).image, y, "ab-bins")) < 0.8 * math.log(484)


def test_strided_bins_run_shows_d_c_the_photos_decimated_as_the_paired_term_scores_them(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bins_stride 2 with the adversarial term: the head decodes every 2nd pixel only, so D_c judges that
    # decimated photo, on the decimated photo's lightness, against the real photo decimated at the same offset.
    config = _config(
        data_dir, tmp_path / "adv2", steps=2, batch_size=2, paired_loss="ab-bins", paired_weight=1.0,
        adv_weight=1.0, cycle_weight=0.0, content_weight=0.0, cam_weight=0.0, bins_stride=2,
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    offsets, judged = [], []
    strided_head = trainer._strided_head

    def recording_head(G: Any, offset: Any = None) -> Any:
        offset = offset if offset is not None else (1, 0)  # off the diagonal: rows and columns differ
        offsets.append(offset)
        return strided_head(G, offset)

    discriminator_loss = trainer._discriminator_loss

    def recording_loss(D: Any, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        judged.append((real.detach().clone(), fake.detach().clone()))
        return discriminator_loss(D, real, fake)

    monkeypatch.setattr(trainer, "_strided_head", recording_head)
    monkeypatch.setattr(trainer, "_discriminator_loss", recording_loss)
    y = _batch(trainer, range(2))
    d_before = [p.detach().clone() for p in trainer.D_c.parameters()]
    terms = trainer.train_step(y)
    assert terms["g_adv"] > 0 and terms["d_total"] > 0
    assert any(not torch.equal(a, p) for a, p in zip(d_before, trainer.D_c.parameters()))
    assert offsets == [(1, 0)] and len(judged) == 1
    real, fake = judged[0]
    decimated = y[:, :, 1::2, 0::2]
    assert real.shape == fake.shape == (2, 3, 16, 16)
    assert torch.equal(real, decimated)
    # The fake is the head's colour on the decimated photo's own lightness (but where a colour outside the
    # gamut at that lightness was clipped: the untrained head's saturated guesses on the brightest pixels).
    lightness = rgb_to_lab((fake + 1) / 2)[:, 0]
    assert float((lightness - rgb_to_lab((decimated + 1) / 2)[:, 0]).abs().median()) < 0.1


@pytest.mark.parametrize(
    ("stride", "crop", "global_layers", "judged", "needed"), [(1, 64, 7, 64, 96), (2, 32, 5, 16, 24)]
)
def test_run_refuses_photos_too_small_for_its_discriminator_when_built(
    data_dir: Path, tmp_path: Path, stride: int, crop: int, global_layers: int, judged: int, needed: int
) -> None:
    # D_c judges the whole crop at stride 1, the crop decimated by the stride otherwise; a D too deep for
    # that is refused when the trainer is built, not by the discriminator at the first step.
    config = _config(
        data_dir, tmp_path / "small", crop_size=crop, load_size=crop, paired_loss="ab-bins",
        paired_weight=1.0, adv_weight=1.0, cycle_weight=0.0, content_weight=0.0, bins_stride=stride,
        d_global_layers=global_layers,
    )  # fmt: skip
    with pytest.raises(ValueError, match=f"judge {judged}x{judged} photos.*needs at least {needed}"):
        Trainer(config, progress=False)


@pytest.mark.parametrize("paired", ["ab-bins", "ab-huber"])
def test_colour_head_run_trains_against_d_c_on_the_photo_its_head_shows(
    data_dir: Path, tmp_path: Path, paired: str
) -> None:
    # The paper's adversarial and CAM terms with a colour head: D_c judges the head's ab on the photo's own
    # lightness, and that photo carries the adversarial gradient back to the head.
    config = _config(
        data_dir, tmp_path / "adv", steps=2, batch_size=2, paired_loss=paired, paired_weight=1.0, adv_weight=1.0,
        cycle_weight=0.0, content_weight=0.0, cam_weight=999.0, sample_every=2,
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    assert trainer.D_c is not None and trainer.G_c is None
    y = _batch(trainer, range(2))
    truth = rgb_to_lab((y + 1) / 2)
    if paired == "ab-bins":  # scores all on each pixel's true bin: its centre, within half a bin's diagonal
        exact = torch.full((2, 484, *y.shape[-2:]), -20.0).scatter_(1, ab_bin_index(truth[:, 1:]).unsqueeze(1), 20.0)
        off = 5 * math.sqrt(2) + 0.5
    else:
        exact, off = truth[:, 1:] / AB_SCALE, 0.5
    shown = rgb_to_lab((trainer._shown_photo(exact, y) + 1) / 2)
    assert float((shown[:, 0] - truth[:, 0]).abs().mean()) < 0.5  # the photo's own lightness
    assert float((shown[:, 1:] - truth[:, 1:]).norm(dim=1).median()) < off  # the head's colour
    output = trainer.G_g(to_gray(y)).image.detach().requires_grad_(True)
    photo = trainer._shown_photo(output, y)
    assert photo.shape == y.shape and -1 <= float(photo.detach().min()) <= float(photo.detach().max()) <= 1
    adversarial_loss(trainer.D_c(photo)).backward()
    assert output.grad is not None and float(output.grad.abs().sum()) > 0
    d_before = [p.detach().clone() for p in trainer.D_c.parameters()]
    terms = trainer.train_step(y)
    assert terms["g_adv"] > 0 and terms["d_total"] > 0 and terms["g_cam"] > 0
    assert any(not torch.equal(a, p) for a, p in zip(d_before, trainer.D_c.parameters()))
    trainer.train()  # checkpoints D_c with G_g, samples and exports the colour head
    assert Colorizer.from_pretrained(tmp_path / "adv" / "colorizer").generator.head_kind == (
        "logits" if paired == "ab-bins" else "ab"
    )


def test_colour_head_run_with_a_colour_input_takes_eq_7_on_its_identity_branch(data_dir: Path, tmp_path: Path) -> None:
    # Eq. 6 compares G_g(y) with y, which a head of bin scores cannot be compared with; eq. 7's half can.
    config = _config(data_dir, tmp_path / "cam", steps=1, batch_size=2, **{**BINS_RUN, "cam_weight": 999.0})
    trainer = Trainer(config, progress=False)
    assert trainer.G_g.in_channels == 3 and trainer.D_c is None
    terms = trainer.train_step(_batch(trainer, range(2)))
    assert terms["g_cam"] > 0 and terms["g_content"] == 0 and math.isfinite(terms["g_total"])


def test_ab_bins_run_starts_from_an_image_models_body_and_exports_a_bins_colorizer(
    data_dir: Path, tmp_path: Path
) -> None:
    image_run = _config(
        data_dir, tmp_path / "image", steps=1, paired_loss="chroma-l2", paired_weight=1.0, adv_weight=0.0,
        cycle_weight=0.0, content_weight=0.0, cam_weight=0.0,
    )  # fmt: skip
    Trainer(image_run, progress=False).train()
    # Keep only the centre tap of the image model's 7x7 output conv, so that its chroma is a smooth function
    # of a linear map of its last features, which the new layer can then reproduce.
    weights_file = tmp_path / "image" / "colorizer" / "model.safetensors"
    weights = load_file(str(weights_file))
    key = "generator.head.0.1.weight"  # the conv after the reflection padding
    centre = torch.zeros_like(weights[key])
    centre[..., 3, 3] = weights[key][..., 3, 3] * 4
    save_file({**weights, key: centre}, str(weights_file))
    source = Colorizer.from_pretrained(tmp_path / "image" / "colorizer").generator.state_dict()

    config = dataclasses.replace(
        image_run, out=str(tmp_path / "bins"), paired_loss="ab-bins", steps=40, batch_size=3, lr=1e-2,
        rebalance=0.5, rebalance_images=4, sample_every=40, init_from=str(tmp_path / "image" / "colorizer"),
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    state = trainer.G_g.state_dict()
    assert trainer.G_g.out_channels == 484 and trainer.G_g.head_kind == "logits"
    for name, tensor in source.items():  # the body is the image model's; the new output layer is not
        if not name.startswith("head."):
            assert torch.equal(state[name], tensor.float()), name
    y = _batch(trainer, range(len(trainer.color_data)))

    def error() -> float:
        with torch.no_grad():
            return float(paired_loss(trainer.G_g(to_gray(y)).image, y, "ab-bins"))

    # The fresh output layer starts at the image model's own colours: its annealed mean at any temperature
    # is close to the chroma the image model gives the same photos, far closer than a constant colour.
    parent = Colorizer.from_pretrained(tmp_path / "image" / "colorizer")
    with torch.no_grad():
        parent_ab = rgb_to_lab((parent.generator(to_gray(y)).image + 1) / 2)[:, 1:]
        logits = trainer.G_g(to_gray(y)).image
    spread = (parent_ab - parent_ab.mean(dim=(0, 2, 3), keepdim=True)).abs().mean()
    for t in (0.38, 1.0):
        start_ab = ab_from_bin_logits(logits, ab_bin_centers(), t)
        assert (start_ab - parent_ab).abs().mean() < 0.2 * spread, t
    before = error()
    trainer.train()
    assert error() < 0.85 * before  # and it learns beyond the prior
    assert (tmp_path / "bins" / "samples" / "step_0000040.png").is_file()
    loaded = Colorizer.from_pretrained(tmp_path / "bins" / "colorizer")
    assert loaded.ab_bins == {"bin_size": 10.0, "limit": 110.0} and loaded.generator.head_kind == "logits"
    truth = np.asarray(_ramp_image(3), dtype=float)
    gray = _ramp_image(3).convert("L")
    out = np.asarray(loaded.colorize(gray), dtype=float)
    assert np.abs(out - truth).mean() < np.abs(np.asarray(gray.convert("RGB"), dtype=float) - truth).mean()
    # A checkpoint of a bins run does not resume into an image run.
    with pytest.raises(ValueError, match="generator_head"):
        Trainer(dataclasses.replace(config, paired_loss="chroma-l2", init_from=None), resume=True, progress=False)


# ------------------------------------------------------------------------------- the paper's setting
def test_unpaired_paper_setting_gives_finite_loss_terms_and_keeps_rho_in_unit_interval(
    data_dir: Path, tmp_path: Path
) -> None:
    config = _config(data_dir, tmp_path / "out", steps=3)
    assert (config.adv_weight, config.cycle_weight, config.content_weight, config.cam_weight) == (1, 9, 9, 999)
    assert config.paired_weight == 0
    trainer = Trainer(config, progress=False)
    assert trainer.G_c is not None and trainer.D_g is not None
    last = trainer.train()

    assert set(last) == set(LOSS_TERMS)
    log = _read_log(tmp_path / "out")
    assert [r["step"] for r in log] == [1, 2, 3]
    for record in log:
        for term in LOSS_TERMS:
            assert math.isfinite(record[term]), (record["step"], term, record[term])
        # Every term of eq. 9 is active in the paper's setting; ours (paired) is off.
        assert record["g_adv"] > 0 and record["g_cycle"] > 0 and record["g_content"] > 0 and record["g_cam"] > 0
        assert record["d_total"] > 0 and record["g_paired"] == 0
        assert 0.0 <= record["rho/min"] <= record["rho/max"] <= 1.0
    for net in (trainer.G_g, trainer.G_c):
        rhos = torch.cat([r.flatten() for r in _rhos(net)])
        assert rhos.numel() > 0
        assert bool(((rhos >= 0) & (rhos <= 1)).all())


def test_rho_forced_out_of_range_is_clipped_back_after_a_step(data_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(_config(data_dir, tmp_path / "out", steps=3), progress=False)
    assert trainer.G_c is not None
    with torch.no_grad():
        for net in (trainer.G_g, trainer.G_c):
            rhos = _rhos(net)
            rhos[0].fill_(1.7)
            rhos[-1].fill_(-0.4)
    color = _batch(trainer, [0])
    gray = to_gray(_batch(trainer, [1]))
    terms = trainer.train_step(color, gray)
    assert all(math.isfinite(v) for v in terms.values())
    for net in (trainer.G_g, trainer.G_c):
        rhos = _rhos(net)
        assert bool((rhos[0] == 1.0).all()) and bool((rhos[-1] == 0.0).all())  # projected onto [0, 1] (eq. 3)
        for rho in rhos:
            assert bool(((rho >= 0) & (rho <= 1)).all())


# ------------------------------------------------------------------------------------------- resume
class _SimulatedCrash(Exception):
    pass


def _crash_after_checkpoint(trainer: Trainer, step: int) -> None:
    """Run ``trainer`` until its checkpoint at ``step`` is written, then stop it as a crash would."""
    save = trainer.save_checkpoint

    def save_then_crash() -> Path | None:
        path = save()
        if trainer.step == step:
            raise _SimulatedCrash
        return path

    trainer.save_checkpoint = save_then_crash  # type: ignore[method-assign]
    with pytest.raises(_SimulatedCrash):
        trainer.train()


@pytest.mark.parametrize(
    "extra",
    [{}, {"batch_size": 2, "cut_mix": 1.0}, {"batch_size": 2, "bins_stride": 2, **BINS_RUN}],
    ids=["plain", "cut_mix", "ab_bins"],
)
def test_resumed_run_reproduces_the_uninterrupted_run_exactly(data_dir: Path, tmp_path: Path, extra: dict) -> None:
    # cut_mix: the resumed run mixes its batches alike; ab_bins: its strided head draws the same pixel offsets
    # (from the global RNG, which starting the data loaders must leave alone)
    settings = dict(steps=6, checkpoint_every=3, **extra)
    run_a = Trainer(_config(data_dir, tmp_path / "a", **settings), progress=False)
    run_a.train()

    # Run B is killed right after its step-3 checkpoint is written, then resumed by a new Trainer.
    _crash_after_checkpoint(Trainer(_config(data_dir, tmp_path / "b", **settings), progress=False), 3)
    assert not (tmp_path / "b" / "colorizer").exists()

    resumed = Trainer(_config(data_dir, tmp_path / "b", **settings), resume=True, progress=False)
    assert resumed.step == 3
    resumed.train()

    log_a = {r["step"]: r for r in _read_log(tmp_path / "a")}
    log_b = {r["step"]: r for r in _read_log(tmp_path / "b")}
    assert sorted(log_a) == sorted(log_b) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        a = {k: v for k, v in log_a[step].items() if k != "time"}
        b = {k: v for k, v in log_b[step].items() if k != "time"}
        assert set(a) == set(b) and set(LOSS_TERMS) <= set(a)
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-6), (step, key)
    for name, net in run_a._networks().items():
        other = resumed._networks()[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.allclose(value, other[key], rtol=0, atol=1e-6), (name, key)


def test_resume_after_a_crash_past_the_checkpoint_logs_each_step_once(data_dir: Path, tmp_path: Path) -> None:
    settings = dict(steps=6, checkpoint_every=3, log_every=1)
    crashing = Trainer(_config(data_dir, tmp_path / "run", **settings), progress=False)
    step = crashing.train_step

    def step_then_crash(*args: Any) -> dict[str, float]:
        if crashing.step == 4:  # steps 1-4 are logged, the checkpoint holds step 3
            raise _SimulatedCrash
        return step(*args)

    crashing.train_step = step_then_crash  # type: ignore[method-assign]
    with pytest.raises(_SimulatedCrash):
        crashing.train()
    assert [r["step"] for r in _read_log(tmp_path / "run")] == [1, 2, 3, 4]

    Trainer(_config(data_dir, tmp_path / "run", **settings), resume=True, progress=False).train()
    assert [r["step"] for r in _read_log(tmp_path / "run")] == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_a_checkpoint_of_another_architecture(data_dir: Path, tmp_path: Path) -> None:
    Trainer(_config(data_dir, tmp_path / "out", steps=3), progress=False).save_checkpoint()
    for overrides, field in (
        (dict(base_channels=16), "base_channels"),
        (dict(num_blocks=2), "num_blocks"),
        (dict(pooling=("avg", "max")), "pooling"),
        (dict(d_base_channels=16), "d_base_channels"),
        (dict(cycle_weight=0.0), "cycle_weight_enabled"),
        (dict(encoder_norm="bn"), "encoder_norm"),
    ):
        config = _config(data_dir, tmp_path / "out", steps=3, **overrides)
        with pytest.raises(ValueError, match=field):
            Trainer(config, resume=True, progress=False)
    # Optimisation settings are not architecture: changing them resumes fine.
    config = _config(data_dir, tmp_path / "out", steps=9, lr=1e-3, cam_weight=10.0)
    resumed = Trainer(config, resume=True, progress=False)
    assert resumed.step == 0


# -------------------------------------------------------------------------------------- checkpoints
def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    config = _config(data_dir, out, steps=5, cycle_weight=0.0)
    trainer = Trainer(config, progress=False)
    trainer.train_step(_batch(trainer, [0, 1]))
    trainer.step = 1
    path = trainer.save_checkpoint()
    assert path == out / CHECKPOINT_NAME
    saved_bytes = path.read_bytes()
    saved_weights = copy.deepcopy(trainer.G_g.state_dict())

    trainer.train_step(_batch(trainer, [2, 3]))
    trainer.step = 2

    def torn_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr("agincolor.train.trainer.torch.save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    monkeypatch.undo()

    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME]  # no temporary file left behind
    assert path.read_bytes() == saved_bytes
    fresh = Trainer(config, progress=False)
    fresh.load_checkpoint(path)
    assert fresh.step == 1
    for key, value in saved_weights.items():
        assert torch.equal(fresh.G_g.state_dict()[key], value), key


# -------------------------------------------------------------------------------------------- data
def test_unreadable_images_are_skipped_with_one_warning_each_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = _write_images(data, count=3) + _write_images(data / "nested", count=1)
    corrupt = data / "corrupt.jpg"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    truncated = data / "truncated.png"
    _ramp_image(5).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (data / "notes.txt").write_text("not an image")
    bad = [corrupt, truncated]

    out = tmp_path / "out"
    # Batch 2, 3 steps over 6 images: each domain's sampler reads every file once.
    trainer = Trainer(_config(data, out, steps=3, batch_size=2, cycle_weight=0.0), progress=False)
    assert sorted(trainer.color_data.files) == sorted(good + bad)  # .txt ignored, subfolders searched
    with pytest.warns(UserWarning) as record:
        trainer.train()

    messages = [str(w.message) for w in record]
    for path in bad:
        naming = [m for m in messages if path.name in m]
        assert len(naming) == 1, (path.name, messages)
        assert "skipping unreadable image" in naming[0]
    assert not any("notes.txt" in m for m in messages)
    assert not any(p.name in m for p in good for m in messages)
    assert any("were skipped" in m for m in messages)
    assert trainer.step == 3
    assert trainer.skipped >= 2 * len(bad)  # both domains' samplers hit each bad file at least once
    log = _read_log(out)
    assert [r["step"] for r in log] == [1, 2, 3]
    assert log[-1]["skipped_files"] == trainer.skipped
    assert (out / "colorizer" / "model.safetensors").is_file()


def test_random_resized_crops_cover_the_asked_share_of_the_image(tmp_path: Path) -> None:
    from agincolor.train.data import ImageFolder

    # A horizontal ramp: a crop's side shows as the range of values along one of its rows.
    ramp = np.tile(np.linspace(0, 255, 64), (64, 1))
    Image.fromarray(np.stack([ramp] * 3, axis=-1).round().astype(np.uint8)).save(tmp_path / "ramp.png")

    def sides(folder: ImageFolder) -> list[float]:
        out = []
        for seed in range(40):
            row = (folder[(0, seed)][0][0, 16] + 1) * 127.5  # a middle row, back in 0..255
            out.append(float(row.max() - row.min()) / 255 * 63 + 1)  # the crop's side in load-size pixels
        return out

    plain = sides(ImageFolder(tmp_path, load_size=64, crop_size=32, flip=False))
    assert all(abs(side - 32) < 1.5 for side in plain)  # scale_min 1: a plain 32 px crop, as before
    zoomed = sides(ImageFolder(tmp_path, load_size=64, crop_size=32, flip=False, scale_min=0.25))
    assert all(32 - 2 <= side <= 64 + 1 for side in zoomed)  # between a quarter and all of the area ...
    assert min(zoomed) < 40 and max(zoomed) > 56  # ... spread over that range
    item = ImageFolder(tmp_path, load_size=64, crop_size=32, flip=False, scale_min=0.25)[(0, 3)][0]
    assert item.shape == (3, 32, 32) and item.dtype == torch.float32
    assert torch.equal(item, ImageFolder(tmp_path, load_size=64, crop_size=32, flip=False, scale_min=0.25)[(0, 3)][0])
    with pytest.raises(ValueError, match="scale_min"):
        ImageFolder(tmp_path, load_size=64, crop_size=32, scale_min=0.0)


def test_tone_jitter_redraws_each_photos_curve_but_keeps_its_order_of_tones() -> None:
    from agincolor.train.data import jitter_tone

    ramp = torch.linspace(-1, 1, 64).view(1, 1, 1, 64).expand(8, 3, 16, 64).contiguous()  # 8 equal photos
    out = jitter_tone(ramp, 0.3, torch.Generator().manual_seed(0))
    assert out.shape == ramp.shape and out.dtype == ramp.dtype
    assert out.min() >= -1 and out.max() <= 1
    assert torch.equal(out[:, :1].expand_as(out), out)  # one curve per photo, the same on every channel
    assert (out[..., 1:] >= out[..., :-1]).all()  # a tone curve: darker stays darker, nothing is redrawn
    mids = out[:, 0, 0, 32]
    assert len({round(float(v), 4) for v in mids}) == 8  # each photo its own curve
    assert float((out - ramp).abs().mean()) > 0.01
    assert torch.equal(out, jitter_tone(ramp, 0.3, torch.Generator().manual_seed(0)))  # drawn from the generator
    assert jitter_tone(ramp, 0.0) is ramp

    # How far mid-gray moves over 200 draws, as a share of the range: more with strength, and at 0.3 about
    # a tenth (gamma e^0.3 alone takes 0.5 to 0.39), as docs/training.md says.
    def widest(strength: float) -> float:
        moved = jitter_tone(ramp.repeat(25, 1, 1, 1), strength, torch.Generator().manual_seed(1))
        return float((moved[:, 0, 0, 32] - ramp[0, 0, 0, 32]).abs().max()) / 2

    assert 0 < widest(0.1) < widest(0.3) < widest(1.0)
    assert 0.08 < widest(0.3) < 0.13
    with pytest.raises(ValueError, match="strength"):
        jitter_tone(ramp, 1.5)
    with pytest.raises(ValueError, match="gray batch"):
        jitter_tone(ramp[0], 0.3)


def test_gray_jitter_feeds_the_generator_a_retoned_gray_input(data_dir: Path, tmp_path: Path) -> None:
    seen: dict[float, torch.Tensor] = {}
    for jitter in (0.0, 0.5):
        config = _config(
            data_dir, tmp_path / f"out{jitter}", steps=1, batch_size=2, paired_weight=1.0, gray_jitter=jitter,
            content_weight=0.0, cam_weight=0.0,
        )  # fmt: skip  (no identity branch: G_g's one forward is on the gray input)
        trainer = Trainer(config, progress=False)
        color = _batch(trainer, range(2))
        trainer.G_g.register_forward_pre_hook(lambda _m, args, j=jitter: seen.setdefault(j, args[0].detach().clone()))
        trainer.train_step(color)
    plain = to_gray(color)[:, : trainer.G_g.in_channels]
    assert torch.equal(seen[0.0], plain)
    assert not torch.allclose(seen[0.5], plain, atol=0.02)
    assert (seen[0.5][..., 1:] >= seen[0.5][..., :-1]).eq(plain[..., 1:] >= plain[..., :-1]).float().mean() > 0.95


def test_jitter_sharpness_adds_or_removes_a_multiple_of_each_photos_own_detail() -> None:
    from torchvision.transforms.functional import gaussian_blur

    from agincolor.train.data import jitter_sharpness

    torch.manual_seed(0)
    photos = (torch.rand(40, 1, 36, 36) - 0.5) * 0.6  # within [-0.3, 0.3]: no result reaches the clip
    out = jitter_sharpness(photos, 0.8, torch.Generator().manual_seed(0))
    assert torch.equal(out, jitter_sharpness(photos, 0.8, torch.Generator().manual_seed(0)))  # drawn from the generator
    # Each photo is itself plus its own multiple k of its detail (the photo less its 1-pixel Gaussian blur,
    # edges reflected): k -1 would be the blur itself, k +1 an unsharp mask at full amount.
    detail = photos - gaussian_blur(photos, kernel_size=5, sigma=1.0)
    k = ((out - photos) * detail).sum(dim=(1, 2, 3)) / detail.pow(2).sum(dim=(1, 2, 3))
    assert torch.allclose(out, photos + k.view(-1, 1, 1, 1) * detail, atol=1e-5)
    assert float(k.abs().max()) <= 0.8 + 1e-6 and float(k.min()) < -0.4 and float(k.max()) > 0.4
    assert torch.allclose(out.mean(dim=(1, 2, 3)), photos.mean(dim=(1, 2, 3)), atol=2e-3)  # brightness kept
    flat = torch.full((2, 3, 32, 40), 0.25)
    assert torch.allclose(jitter_sharpness(flat, 1.0, torch.Generator().manual_seed(3)), flat, atol=1e-6)
    full = torch.rand(8, 1, 32, 32) * 2 - 1
    sharpened = jitter_sharpness(full, 1.0, torch.Generator().manual_seed(4))
    assert float(sharpened.min()) >= -1 and float(sharpened.max()) <= 1
    assert jitter_sharpness(full, 0.0) is full
    with pytest.raises(ValueError, match="strength"):
        jitter_sharpness(full, 1.5)
    with pytest.raises(ValueError, match="gray batch"):
        jitter_sharpness(full[0], 0.5)


def test_gray_sharpness_alters_the_students_input_and_not_the_teachers(data_dir: Path, tmp_path: Path) -> None:
    Trainer(_config(data_dir, tmp_path / "teacher", steps=2, batch_size=2, **BINS_RUN), progress=False).train()
    seen: dict[str, torch.Tensor] = {}
    for sharpness in (0.0, 1.0):
        config = _config(
            data_dir, tmp_path / f"student{sharpness}", steps=1, batch_size=2, **BINS_RUN, gray_sharpness=sharpness,
            distill_from=(str(tmp_path / "teacher" / "colorizer"),),
        )  # fmt: skip
        trainer = Trainer(config, progress=False)
        color = _batch(trainer, range(2))
        for name, net in ((f"student{sharpness}", trainer.G_g), (f"teacher{sharpness}", trainer.teachers[0])):
            net.register_forward_pre_hook(lambda _m, args, n=name: seen.setdefault(n, args[0].detach().clone()))
        trainer.train_step(color)
    plain = to_gray(color)[:, :1]
    assert torch.equal(seen["student0.0"][:, :1], plain)
    assert torch.equal(seen["teacher0.0"][:, :1], plain) and torch.equal(seen["teacher1.0"][:, :1], plain)
    change = seen["student1.0"][:, :1] - plain
    assert float(change.abs().max()) > 0.01  # softer or crisper (the test photos are smooth), not the photo
    assert float(change.mean().abs()) < 0.05 * float(change.abs().max())  # but no brighter or darker


def test_cut_mix_pastes_one_rectangle_of_another_photo_at_the_same_place() -> None:
    from agincolor.train.data import cut_mix

    photos = torch.rand(12, 3, 64, 48)  # every pixel differs from photo to photo
    mixed, which = cut_mix(photos, 1.0, torch.Generator().manual_seed(0))
    assert bool(which.all()) and torch.equal(photos, photos.clone())  # every photo mixed, the input untouched
    shifts = set()
    for i in range(12):
        changed = (mixed[i] != photos[i]).any(dim=0)
        rows, cols = torch.nonzero(changed, as_tuple=True)
        top, bottom, left, right = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        assert int(changed.sum()) == (bottom - top) * (right - left)  # one filled rectangle, nothing else
        share = (bottom - top) * (right - left) / (64 * 48)
        assert 0.09 <= share <= 0.52
        assert 0.45 <= ((bottom - top) / 64) / ((right - left) / 48) <= 2.2  # relative to the photo's own shape
        donors = [j for j in range(12) if torch.equal(mixed[i, :, top:bottom, left:right], photos[j, :, top:bottom, left:right])]
        assert len(donors) == 1 and donors[0] != i
        shifts.add((donors[0] - i) % 12)
        outside = ~changed
        assert torch.equal(mixed[i][:, outside], photos[i][:, outside])
    assert len(shifts) == 1  # one shift per batch: every photo gives and receives exactly once
    again, _ = cut_mix(photos, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(again, mixed)  # drawn from the generator
    many = torch.rand(400, 1, 8, 8)
    share = float(cut_mix(many, 0.3, torch.Generator().manual_seed(1))[1].float().mean())
    assert 0.2 < share < 0.4
    single = many[:1]
    assert cut_mix(single, 1.0)[0] is single and not bool(cut_mix(single, 1.0)[1].any())
    assert cut_mix(many, 0.0)[0] is many
    with pytest.raises(ValueError, match="probability"):
        cut_mix(many, 1.5)
    with pytest.raises(ValueError, match="photo batch"):
        cut_mix(many[0], 0.5)


def test_cut_mix_makes_input_and_target_from_the_same_mixed_photo(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agincolor.train import losses
    from agincolor.train.data import cut_mix, mix_generator

    Trainer(_config(data_dir, tmp_path / "teacher", steps=2, batch_size=2, **BINS_RUN), progress=False).train()
    config = _config(
        data_dir, tmp_path / "student", steps=1, batch_size=3, **BINS_RUN, cut_mix=1.0,
        distill_from=(str(tmp_path / "teacher" / "colorizer"),),
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    color = _batch(trainer, range(3))
    seen: dict[str, torch.Tensor] = {}
    for name, net in (("student", trainer.G_g), ("teacher", trainer.teachers[0])):
        net.register_forward_pre_hook(lambda _m, args, n=name: seen.setdefault(n, args[0].detach().clone()))
    targets: list[torch.Tensor] = []
    scored = losses.paired_loss
    monkeypatch.setattr(losses, "paired_loss", lambda out, target, *a, **k: targets.append(target) or scored(out, target, *a, **k))
    trainer.train_step(color)
    mixed, which = cut_mix(color, 1.0, mix_generator(config.seed, 0))
    assert bool(which.all()) and not torch.equal(mixed, color)
    assert torch.equal(seen["student"][:, :1], to_gray(mixed)[:, :1])  # the gray input of the mixed photo
    assert torch.equal(seen["teacher"][:, :1], to_gray(mixed)[:, :1])
    assert len(targets) == 1 and torch.equal(targets[0], mixed)  # scored against that same mixed photo


def test_empty_or_missing_data_folder_is_refused_at_construction(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        Trainer(_config(empty, tmp_path / "out"), progress=False)
    text_only = tmp_path / "text_only"
    text_only.mkdir()
    (text_only / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="text_only"):
        Trainer(_config(text_only, tmp_path / "out"), progress=False)
    with pytest.raises(FileNotFoundError, match="missing_folder"):
        Trainer(_config(tmp_path / "missing_folder", tmp_path / "out"), progress=False)
    _write_images(tmp_path / "colour", count=2)
    config = _config(tmp_path / "colour", tmp_path / "out", gray_data=str(tmp_path / "no_gray_here"))
    with pytest.raises(FileNotFoundError, match="no_gray_here"):
        Trainer(config, progress=False)


# ----------------------------------------------------------------------------------- wasted compute
def test_generator_and_discriminator_steps_do_not_backpropagate_into_each_other(data_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(_config(data_dir, tmp_path / "out", steps=3), progress=False)
    assert trainer.G_c is not None and trainer.D_g is not None
    seen: list[tuple[str, dict[str, Any]]] = []
    g_step, d_step = trainer.opt_g.step, trainer.opt_d.step

    def inspect_g_step(*args: Any, **kwargs: Any) -> Any:
        seen.append(("G", dict(
            d_requires_grad=[p.requires_grad for p in trainer.d_params],
            d_grads=_grads(trainer.d_params),
            g_grads=_grads(trainer.g_params),
        )))  # fmt: skip
        return g_step(*args, **kwargs)

    def inspect_d_step(*args: Any, **kwargs: Any) -> Any:
        seen.append(("D", dict(d_grads=_grads(trainer.d_params), g_grads=_grads(trainer.g_params))))
        return d_step(*args, **kwargs)

    trainer.opt_g.step = inspect_g_step  # type: ignore[method-assign]
    trainer.opt_d.step = inspect_d_step  # type: ignore[method-assign]
    calls = {name: 0 for name in ("G_g", "G_c", "D_c", "D_g")}
    for name in calls:
        getattr(trainer, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))

    for step in range(2):
        trainer.train_step(_batch(trainer, [step]), to_gray(_batch(trainer, [step + 2])))
        # G_g runs on x (translation), y (identity) and G_c(y) (cycle), once each; likewise G_c. Each D
        # judges the fake once in the generator step and real+fake in one batched discriminator pass.
        assert calls == {"G_g": 3 * (step + 1), "G_c": 3 * (step + 1), "D_c": 2 * (step + 1), "D_g": 2 * (step + 1)}
        assert all(p.requires_grad for p in trainer.d_params)

    assert [kind for kind, _ in seen] == ["G", "D", "G", "D"]
    (_, g1), (_, d1), (_, g2), (_, d2) = seen
    # During the generator step the discriminators are frozen and get no gradient at all ...
    assert not any(g1["d_requires_grad"]) and not any(g2["d_requires_grad"])
    assert all(g is None for g in g1["d_grads"])
    assert _same_grads(g2["d_grads"], d1["d_grads"])  # ... not even accumulated onto the last D gradients.
    # The discriminator loss sees detached fakes: the generators' gradients are left as they were.
    assert sum(g is not None for g in g1["g_grads"]) > 0.9 * len(trainer.g_params)
    assert _same_grads(d1["g_grads"], g1["g_grads"]) and _same_grads(d2["g_grads"], g2["g_grads"])
    assert all(g is not None for g in d1["d_grads"])


# ------------------------------------------------------------------------------------------- export
def test_exported_colorizer_reproduces_the_trained_generator(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    trainer = Trainer(_config(data_dir, out, steps=2, cycle_weight=0.0), progress=False)
    trainer.train()
    folder = out / "colorizer"
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert all(t.dtype == torch.float16 for t in load_file(str(folder / "model.safetensors")).values())

    loaded = Colorizer.from_pretrained(folder)
    assert loaded.working_size == 32
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = to_gray(_batch(trainer, range(3)))
    reference = copy.deepcopy(trainer.G_g).half().float().eval()
    with torch.no_grad():
        got = loaded.generator(x).image
        assert torch.equal(got, reference(x).image)  # exactly the trained weights, rounded to float16
        assert torch.allclose(got, trainer.G_g(x).image, atol=1e-2)

    full = export_generator(trainer.G_g, tmp_path / "fp32", trainer.config.generator_kwargs(), 48, half=False)
    exact = Colorizer.from_pretrained(full)
    assert exact.working_size == 48
    with torch.no_grad():
        assert torch.equal(exact.generator(x).image, trainer.G_g(x).image)
    colour = loaded.colorize(_ramp_image(2).convert("L"))
    assert colour.size == (40, 40) and colour.mode == "RGB"


def test_ema_follows_the_ramped_average_of_each_steps_weights_and_is_what_exports(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    trainer = Trainer(_config(data_dir, out, steps=3, cycle_weight=0.0, ema=0.9, lr=1e-2), progress=False)
    assert trainer.G_ema is not None and not any(p.requires_grad for p in trainer.G_ema.parameters())
    expected = {k: v.clone() for k, v in trainer.G_g.state_dict().items()}
    step = trainer.train_step

    def step_and_average(*args: Any) -> dict[str, float]:
        terms = step(*args)
        n = trainer.ema_updates
        decay = min(0.9, (1 + n) / (10 + n))  # 0.18, 0.25, 0.31: the ramp, still below 0.9
        for k, v in trainer.G_g.state_dict().items():
            expected[k] = decay * expected[k] + (1 - decay) * v
        return terms

    trainer.train_step = step_and_average  # type: ignore[method-assign]
    trainer.train()
    assert trainer.ema_updates == 3
    average, current = trainer.G_ema.state_dict(), trainer.G_g.state_dict()
    for k, v in expected.items():
        assert torch.allclose(average[k], v, atol=1e-6), k
    moved = [k for k in current if not torch.equal(current[k], average[k])]
    assert any(".weight" in k for k in moved)  # the average lags the last step's weights

    exported = load_file(str(out / "colorizer" / "model.safetensors"))
    for k, v in average.items():
        assert torch.equal(exported["generator." + k], v.half()), k
    assert sum(not torch.equal(exported["generator." + k], current[k].half()) for k in moved) > len(moved) // 2


def test_resumed_run_continues_the_weight_average_exactly(data_dir: Path, tmp_path: Path) -> None:
    settings = dict(steps=4, checkpoint_every=2, cycle_weight=0.0, ema=0.5)
    whole = Trainer(_config(data_dir, tmp_path / "a", **settings), progress=False)
    whole.train()
    first = Trainer(_config(data_dir, tmp_path / "b", **{**settings, "steps": 2}), progress=False)
    first.train()
    resumed = Trainer(_config(data_dir, tmp_path / "b", **settings), resume=True, progress=False)
    assert resumed.step == 2 and resumed.ema_updates == 2
    resumed.train()
    assert resumed.G_ema is not None and whole.G_ema is not None
    for k, v in whole.G_ema.state_dict().items():
        assert torch.allclose(resumed.G_ema.state_dict()[k], v, rtol=0, atol=1e-6), k

    # A checkpoint written without the average starts one at the weights it resumes from.
    plain = Trainer(_config(data_dir, tmp_path / "c", steps=2, cycle_weight=0.0), progress=False)
    plain.train()
    later = Trainer(_config(data_dir, tmp_path / "c", **settings), resume=True, progress=False)
    assert later.G_ema is not None and later.ema_updates == 0
    for k, v in plain.G_g.state_dict().items():
        assert torch.equal(later.G_ema.state_dict()[k], v), k


def test_batch_norm_encoder_run_exports_a_colorizer_that_loads_and_refuses_an_instance_norm_parent(
    data_dir: Path, tmp_path: Path
) -> None:
    settings = dict(steps=2, cycle_weight=0.0, adv_weight=0.0, content_weight=0.0, cam_weight=0.0,
                    paired_weight=1.0, paired_loss="chroma-l2")  # fmt: skip
    trainer = Trainer(_config(data_dir, tmp_path / "bn", encoder_norm="bn", **settings), progress=False)
    stats = trainer.G_g.encoder[1].running_mean.clone()
    trainer.train()
    assert not torch.equal(trainer.G_g.encoder[1].running_mean, stats)  # trained on batch statistics
    loaded = Colorizer.from_pretrained(tmp_path / "bn" / "colorizer")
    assert loaded.generator.encoder_norm == "bn"
    assert torch.allclose(loaded.generator.encoder[1].running_mean, trainer.G_g.encoder[1].running_mean, atol=1e-2)
    assert loaded.colorize(_ramp_image(1).convert("L")).size == (40, 40)

    Trainer(_config(data_dir, tmp_path / "in", **settings), progress=False).train()
    with pytest.raises(ValueError, match="encoder_norm"):
        Trainer(_config(data_dir, tmp_path / "x", encoder_norm="bn", init_from=str(tmp_path / "in" / "colorizer"),
                        **settings), progress=False)  # fmt: skip


# ------------------------------------------------------------------------------------ command line
def test_example_script_help_lists_every_config_field() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True, env=_subprocess_env(), timeout=120
    )
    assert result.returncode == 0, result.stderr
    # ``extra`` is a free-form dict for programmatic use, not a command-line option.
    flags = ["--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig) if f.name != "extra"]
    missing = [flag for flag in flags if flag not in result.stdout]
    assert not missing, missing
    for flag in ("--paired-weight", "--cycle-weight", "--time-budget", "--init-from", "--resume", "--no-progress"):
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(crop_size=64, load_size=48), "crop_size"),
        (dict(adv_weight=-1.0), "adv_weight"),
        (dict(cycle_weight=-0.5), "cycle_weight"),
        (dict(content_weight=-9.0), "content_weight"),
        (dict(cam_weight=-999.0), "cam_weight"),
        (dict(paired_weight=-1.0), "paired_weight"),
        (dict(pooling=("avg", "mode")), "pooling"),
        (dict(paired_weight=1.0, gray_data="gray"), "gray_data"),
        (dict(steps=0), "steps"),
        (dict(decay_start=1.5), "decay_start"),
        (dict(paired_loss="l2"), "paired_loss"),
        (dict(adv_weight=0.0), "adv_weight"),
        (dict(rebalance=-0.5, paired_weight=1.0), "rebalance"),
        (dict(rebalance=0.5), "rebalance"),
        (dict(rebalance=0.5, paired_weight=1.0, rebalance_images=0), "rebalance_images"),
        (dict(time_budget=0.0), "time_budget"),
        (dict(snapshot_every=-60.0), "snapshot_every"),
        (dict(scale_min=0.0), "scale_min"),
        (dict(scale_min=1.5), "scale_min"),
        (dict(gray_jitter=-0.1), "gray_jitter"),
        (dict(gray_jitter=1.5), "gray_jitter"),
        (dict(gray_jitter=True), "gray_jitter"),
        (dict(gray_sharpness=-0.5), "gray_sharpness"),
        (dict(gray_sharpness=2.0), "gray_sharpness"),
        (dict(gray_sharpness="1"), "gray_sharpness"),
        (dict(cut_mix=-0.1), "cut_mix"),
        (dict(cut_mix=1.5), "cut_mix"),
        (dict(cut_mix=True), "cut_mix"),
        (dict(source_power=-0.1), "source_power"),
        (dict(source_power=1.5), "source_power"),
        (dict(source_power=True), "source_power"),
        (dict(source_power="0"), "source_power"),
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(warmup_steps=2.5), "warmup_steps"),
        (dict(warmup_steps=True), "warmup_steps"),
        (dict(ema=1.0), "ema"),
        (dict(encoder_norm="batch"), "encoder_norm"),
        (dict(ema=-0.1), "ema"),
        (dict(paired_loss="ab-bins", paired_weight=1.0), "ab-bins"),
        (dict(bins_stride=2, paired_weight=1.0, paired_loss="chroma-l2"), "bins_stride"),
        (dict(bins_stride=0), "bins_stride"),
        (dict(bins_mean_weight=1.0, paired_weight=1.0, paired_loss="chroma-l2"), "bins_mean_weight"),
        (dict(bins_mean_weight=-1.0), "bins_mean_weight"),
        (dict(bins_soft_sigma=5.0, paired_weight=1.0, paired_loss="chroma-l2"), "bins_soft_sigma"),
        (dict(bins_soft_sigma=-1.0), "bins_soft_sigma"),
        (dict(bins_decibel_weight=0.1, paired_weight=1.0, paired_loss="chroma-l2"), "bins_decibel_weight"),
        (dict(bins_decibel_weight=-1.0), "bins_decibel_weight"),
        (dict(paired_loss="ab-bins", paired_weight=1.0, adv_weight=0.0, cycle_weight=0.0), "content_weight"),
        (dict(distill_from=("teacher",)), "distill_from"),
        (dict(distill_from=("teacher",), paired_weight=1.0, paired_loss="chroma-l2"), "distill_from"),
        (dict(distill_flip=True), "distill_flip"),
        (dict(distill_weight=-1.0), "distill_weight"),
        (dict(distill_weight=True), "distill_weight"),
    ],
)
def test_invalid_config_raises_value_error_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(data="data", **overrides)


# ----------------------------------------------------------------------------------- data parallel
@pytest.mark.slow
def test_two_process_gloo_run_averages_gradients_and_writes_once(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(EXAMPLE), "--data", str(data_dir), "--out", str(out), *TINY_FLAGS, "--steps", "3", "--batch-size", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=_subprocess_env(), cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    log = _read_log(out)  # written by rank 0 alone: one record per step, not one per process
    assert [r["step"] for r in log] == [1, 2, 3]
    assert (out / CHECKPOINT_NAME).is_file()
    assert torch.load(out / CHECKPOINT_NAME, weights_only=True)["step"] == 3
    assert not any(p.name.startswith(".") for p in out.iterdir())
    loaded = Colorizer.from_pretrained(out / "colorizer")
    with torch.no_grad():
        assert bool(torch.isfinite(loaded(torch.zeros(1, 3, 32, 32)).image).all())

    # Rank r reads slot r of the global batch, so 2 processes x batch 1 with averaged gradients follow the
    # trajectory of 1 process x batch 2, up to rounding. Adam's normalised first updates amplify that rounding
    # in the small terms (cycle, content: up to 2e-3 relative by step 3 here), but the CAM-dominated total and
    # the discriminator loss stay within 2e-6; with un-averaged gradients they are off by 3e-4 to 5e-3 at step 2.
    single = Trainer(_config(data_dir, tmp_path / "single", steps=3, batch_size=2), progress=False)
    single.train()
    single_log = _read_log(tmp_path / "single")
    for ddp_record, single_record in zip(log, single_log):
        step = ddp_record["step"]
        for term in LOSS_TERMS:
            tight = step == 1 or term in ("g_total", "g_cam", "d_total")
            rel = (1e-5 if step == 1 else 1e-4) if tight else 1e-2
            assert ddp_record[term] == pytest.approx(single_record[term], rel=rel, abs=1e-6), (step, term)


# ------------------------------------------------------------------------ pretrained encoder, ab head
# EfficientNet-Lite0 from its ImageNet weights, one gray input channel, CIELAB ab by a Huber loss: plain
# supervised regression (no discriminator, no reverse generator).
LITE0_AB_RUN: dict[str, Any] = dict(
    encoder="efficientnet_lite0",
    in_channels=1,
    paired_loss="ab-huber",
    paired_weight=1.0,
    adv_weight=0.0,
    cycle_weight=0.0,
    content_weight=0.0,
    cam_weight=0.0,
)


def _imagenet_gray_stem() -> torch.Tensor:
    from agincolor.encoders import efficientnet_lite0_imagenet_state

    return efficientnet_lite0_imagenet_state()["stem.0.weight"].sum(dim=1, keepdim=True)


def test_lite0_ab_run_starts_from_imagenet_and_exports_a_colorizer_that_loads(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    trainer = Trainer(_config(data_dir, out, steps=3, batch_size=2, **LITE0_AB_RUN), progress=False)
    G = trainer.G_g
    assert (G.encoder_name, G.in_channels, G.head_kind, G.out_channels) == ("efficientnet_lite0", 1, "ab", 2)
    assert trainer.D_c is None and trainer.G_c is None and trainer.D_g is None and trainer.opt_d is None
    stem = G.encoder.stem[0].weight
    assert torch.equal(stem, _imagenet_gray_stem())  # the ImageNet stem, summed over RGB
    before = stem.detach().clone()
    trainer.train()
    assert not torch.equal(G.encoder.stem[0].weight, before)  # the encoder learns too

    log = _read_log(out)
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(r["g_paired"] > 0 and math.isfinite(r["g_paired"]) and r["g_adv"] == 0 for r in log)
    assert all(r["d_total"] == 0 for r in log)
    assert len(list((out / "samples").glob("*.png"))) == 1

    folder = out / "colorizer"
    loaded = Colorizer.from_pretrained(folder)
    assert loaded.generator_config["encoder"] == "efficientnet_lite0"
    assert loaded.generator_config["in_channels"] == 1 and loaded.generator_config["head"] == "ab"
    x = to_gray(_batch(trainer, range(3)))[:, :1]
    reference = copy.deepcopy(G).half().float().eval()
    with torch.no_grad():
        assert torch.equal(loaded.generator(x).image, reference(x).image)  # the trained weights in float16
    colour = loaded.colorize(_ramp_image(3).convert("L"))
    assert colour.size == (40, 40) and colour.mode == "RGB"


def test_lite0_ab_run_lowers_its_ab_error(data_dir: Path, tmp_path: Path) -> None:
    config = _config(data_dir, tmp_path / "out", steps=20, batch_size=2, lr=3e-3, **LITE0_AB_RUN)
    trainer = Trainer(config, progress=False)
    y = _batch(trainer, range(len(trainer.color_data)))

    def error() -> float:
        trainer.G_g.eval()
        with torch.no_grad():
            e = float(paired_loss(trainer.G_g(to_gray(y)[:, :1]).image, y, "ab-huber"))
        trainer.G_g.train()
        return e

    before = error()
    trainer.train()
    after = error()
    assert after < 0.8 * before, f"ab Huber loss went from {before:.4f} to only {after:.4f}"


def test_lite0_run_keeps_the_encoders_imagenet_statistics_and_trains_at_batch_1(data_dir: Path, tmp_path: Path) -> None:
    # Batch 1 of 32x32 crops gives 1x1 maps at stride 32: only frozen statistics make that work.
    trainer = Trainer(_config(data_dir, tmp_path / "out", steps=2, batch_size=1, **LITE0_AB_RUN), progress=False)
    norms = [m for m in trainer.G_g.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not [m for m in norms if m.training]
    imagenet = [(m.running_mean.clone(), m.running_var.clone()) for m in norms]
    trainer.train()
    for m, (mean, var) in zip(norms, imagenet):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)


def test_channels_last_bins_run_takes_the_same_steps_as_a_contiguous_one(data_dir: Path, tmp_path: Path) -> None:
    # The recipe trains channels-last: its strided bin scores come out channels-last and take the row-wise
    # loss (bin_cross_entropy); the steps must be the contiguous run's, to float rounding.
    logs, weights = [], []
    for name, last in (("contiguous", False), ("last", True)):
        settings = dict(steps=3, batch_size=2, bins_stride=2, channels_last=last, **BINS_RUN)
        trainer = Trainer(_config(data_dir, tmp_path / name, **settings), progress=False)
        trainer.train()
        logs.append([r["g_paired"] for r in _read_log(tmp_path / name)])
        weights.append({k: v.detach().clone() for k, v in trainer.G_g.state_dict().items()})
    assert len(logs[0]) == 3 and logs[0] == pytest.approx(logs[1], rel=1e-4)
    for key, value in weights[0].items():
        assert torch.allclose(value, weights[1][key], rtol=1e-3, atol=1e-5), key


def test_contiguous_checkpoint_resumes_channels_last_and_continues_its_steps(data_dir: Path, tmp_path: Path) -> None:
    # Checkpoints of the runs before the recipe went channels-last are contiguous. Resumed with channels_last,
    # the weights must keep the channels-last layout (the speed) and the run continue the same steps.
    settings = dict(steps=4, checkpoint_every=2, batch_size=2, bins_stride=2, **BINS_RUN)
    Trainer(_config(data_dir, tmp_path / "whole", **settings), progress=False).train()

    _crash_after_checkpoint(Trainer(_config(data_dir, tmp_path / "run", **settings), progress=False), 2)
    resumed = Trainer(_config(data_dir, tmp_path / "run", channels_last=True, **settings), resume=True, progress=False)
    assert resumed.step == 2
    resumed.train()

    spatial = [p for p in resumed.G_g.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
    assert spatial and all(not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last) for p in spatial)
    # The same losses to float rounding (the layouts sum in other orders; Adam scales those differences up in
    # the weights, so they are compared through the losses they give).
    expected = [r["g_paired"] for r in _read_log(tmp_path / "whole")]
    assert [r["g_paired"] for r in _read_log(tmp_path / "run")] == pytest.approx(expected, rel=1e-4)


def test_lite0_bins_run_from_an_ab_model_starts_at_its_colours_and_scores_strided_pixels(
    data_dir: Path, tmp_path: Path
) -> None:
    Trainer(_config(data_dir, tmp_path / "ab", steps=2, batch_size=2, **LITE0_AB_RUN), progress=False).train()
    parent = Colorizer.from_pretrained(tmp_path / "ab" / "colorizer").generator
    config = _config(
        data_dir, tmp_path / "bins", steps=2, batch_size=2, **{**LITE0_AB_RUN, "paired_loss": "ab-bins"},
        bins_stride=2, bins_mean_weight=1.0, bins_soft_sigma=5.0, bins_decibel_weight=0.1,
        init_from=str(tmp_path / "ab" / "colorizer"),
    )  # fmt: skip
    trainer = Trainer(config, progress=False)
    G = trainer.G_g
    assert (G.head_kind, G.out_channels) == ("logits", 484)
    x = to_gray(_batch(trainer, range(3)))[:, :1]
    G.eval()
    with torch.no_grad():
        parent_ab = parent(x).image * AB_SCALE
        logits = G(x).image
    # An ab parent's output layer is linear in the same features, so the new layer's Gaussian over the
    # bins is centred on exactly its prediction: the annealed mean gives it back (up to the bins' reach).
    inside = (parent_ab.abs() < 80).all(dim=1, keepdim=True).expand_as(parent_ab)  # away from the grid's edge
    assert inside.float().mean() > 0.3
    for t in (0.38, 1.0):
        start_ab = ab_from_bin_logits(logits, ab_bin_centers(), t)
        assert (start_ab - parent_ab)[inside].abs().mean() < 2.0, t  # CIELAB units, under a just-noticeable step

    # Strided scoring: inside the context the output layer sees every 2nd pixel from the yielded offset,
    # and those scores are the full map's at the same pixels; the hook is gone afterwards.
    torch.manual_seed(3)
    with torch.no_grad(), trainer._strided_head(G) as (dy, dx):
        strided = G(x).image
    assert strided.shape == (3, 484, 16, 16)
    assert torch.allclose(strided, logits[:, :, dy::2, dx::2], atol=1e-5)
    with torch.no_grad():
        assert torch.equal(G(x).image, logits)
    G.train()
    trainer.train()
    log = _read_log(tmp_path / "bins")
    assert [r["step"] for r in log] == [1, 2] and all(math.isfinite(r["g_paired"]) for r in log)
    assert not G.head._forward_pre_hooks
    loaded = Colorizer.from_pretrained(tmp_path / "bins" / "colorizer")
    assert loaded.colorize(_ramp_image(3).convert("L")).size == (40, 40)


def test_pretrained_encoder_false_does_not_load_the_imagenet_weights(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the ImageNet weights were loaded")

    monkeypatch.setattr("agincolor.train.trainer.load_pretrained_encoder", refuse)
    trainer = Trainer(_config(data_dir, tmp_path / "out", pretrained_encoder=False, **LITE0_AB_RUN), progress=False)
    monkeypatch.undo()
    assert not torch.equal(trainer.G_g.encoder.stem[0].weight, _imagenet_gray_stem())


def _train_recording_rates(trainer: Trainer) -> list[list[float]]:
    """Run ``trainer.train()``; the generator's learning rate of each param group at every step."""
    seen: list[list[float]] = []
    step = trainer.train_step

    def recording_step(*args: Any) -> dict[str, float]:
        terms = step(*args)
        seen.append([g["lr"] for g in trainer.opt_g.param_groups])
        return terms

    trainer.train_step = recording_step  # type: ignore[method-assign]
    trainer.train()
    return seen


def test_encoder_learns_in_its_own_param_group_and_the_decay_scales_both_rates(
    data_dir: Path, tmp_path: Path
) -> None:
    lr = 1e-3
    trainer = Trainer(_config(data_dir, tmp_path / "out", steps=4, batch_size=2, lr=lr, **LITE0_AB_RUN), progress=False)
    groups = trainer.opt_g.param_groups
    assert len(groups) == 2
    rest, encoder = ({id(p) for p in g["params"]} for g in groups)
    assert encoder == {id(p) for p in trainer.G_g.encoder.parameters()}
    assert not rest & encoder and rest | encoder == {id(p) for p in trainer.G_g.parameters()}
    assert [g["lr"] for g in groups] == pytest.approx([lr, lr / 10])  # encoder_lr defaults to lr / 10

    seen = _train_recording_rates(trainer)
    # decay_start 0.5 of 4 steps: constant for steps 1-3 (fractions 0, 1/4, 1/2), halved at step 4 (3/4).
    assert seen == [pytest.approx([lr * f, lr / 10 * f]) for f in (1.0, 1.0, 1.0, 0.5)]
    assert [r["lr"] for r in _read_log(tmp_path / "out")] == pytest.approx([lr, lr, lr, lr / 2])

    chosen = Trainer(_config(data_dir, tmp_path / "b", lr=lr, encoder_lr=3e-5, **LITE0_AB_RUN), progress=False)
    assert [g["lr"] for g in chosen.opt_g.param_groups] == pytest.approx([lr, 3e-5])
    paper = Trainer(_config(data_dir, tmp_path / "c", cycle_weight=0.0), progress=False)
    assert len(paper.opt_g.param_groups) == 1


def test_warmup_ramps_every_rate_linearly_then_hands_over_to_the_schedule(data_dir: Path, tmp_path: Path) -> None:
    lr = 1e-3
    out = tmp_path / "out"
    trainer = Trainer(
        _config(data_dir, out, steps=6, batch_size=2, lr=lr, warmup_steps=3, decay_start=0.5, **LITE0_AB_RUN),
        progress=False,
    )
    seen = _train_recording_rates(trainer)
    # Steps 1-3 ramp to the full rate (1/3, 2/3, 1); then the decay from half of 6 steps: fractions 1/2,
    # 2/3 and 5/6 give 1, 2/3 and 1/3. The encoder's own rate (lr / 10) follows the same factor.
    factors = (1 / 3, 2 / 3, 1.0, 1.0, 2 / 3, 1 / 3)
    assert seen == [pytest.approx([lr * f, lr / 10 * f]) for f in factors]
    assert [r["lr"] for r in _read_log(out)] == pytest.approx([lr * f for f in factors])


def test_resume_refuses_a_lite0_checkpoint_with_another_input_or_decoder(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    Trainer(_config(data_dir, out, **LITE0_AB_RUN), progress=False).save_checkpoint()
    for overrides, field in (
        (dict(in_channels=3), "in_channels"),
        (dict(decoder_channels=(24, 16, 12, 8, 8)), "decoder_channels"),
        (dict(encoder="paper"), "encoder"),
    ):
        with pytest.raises(ValueError, match=field):
            Trainer(_config(data_dir, out, **{**LITE0_AB_RUN, **overrides}), resume=True, progress=False)
    resumed = Trainer(_config(data_dir, out, **{**LITE0_AB_RUN, "encoder_lr": 1e-5}), resume=True, progress=False)
    assert resumed.step == 0


@pytest.mark.parametrize("option", ["cam_weight", "content_weight", "cycle_weight"])
def test_one_input_channel_with_a_term_that_needs_a_colour_input_is_refused_naming_it(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        TrainConfig(data="data", **{**LITE0_AB_RUN, option: 1.0})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(encoder="resnet50"), "encoder"),
        (dict(in_channels=2), "in_channels"),
        (dict(encoder_lr=0.0), "encoder_lr"),
        (dict(encoder_lr=-1e-4), "encoder_lr"),
        (dict(paired_loss="ab-huber", paired_weight=0.0), "paired_weight"),
        (dict(paired_loss="ab-l2", in_channels=3, cycle_weight=9.0), "not images.*cycle_weight 9.0"),
    ],
)
def test_invalid_encoder_options_raise_value_error_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(data="data", **{**LITE0_AB_RUN, **overrides})


def test_ab_paired_losses_are_zero_at_the_truths_ab_and_huber_turns_linear_past_5_units() -> None:
    from agincolor.train.losses import AB_HUBER_DELTA

    torch.manual_seed(0)
    y = torch.rand(2, 3, 8, 9) * 2 - 1
    truth = rgb_to_lab((y + 1) / 2)[:, 1:] / AB_SCALE
    for kind in ("ab-huber", "ab-l2"):
        assert float(paired_loss(truth, y, kind)) == pytest.approx(0.0, abs=1e-12)
        assert float(paired_loss(truth + 0.01 * torch.randn_like(truth), y, kind)) > 0
    delta = AB_HUBER_DELTA / AB_SCALE
    small, large = 1.1 / AB_SCALE, 0.5  # 1.1 and 55 CIELAB units off, in every channel and pixel
    assert float(paired_loss(truth + small, y, "ab-huber")) == pytest.approx(0.5 * small**2, rel=1e-3)
    assert float(paired_loss(truth - large, y, "ab-huber")) == pytest.approx(delta * (large - delta / 2), rel=1e-3)
    assert float(paired_loss(truth + large, y, "ab-l2")) == pytest.approx(large**2, rel=1e-3)
    # Pixel weights select which errors count.
    weights = torch.zeros(2, 1, 8, 9)
    weights[:, :, :4] = 1.0
    off = truth.clone()
    off[:, :, 4:] += large
    assert float(paired_loss(off, y, "ab-huber", pixel_weights=weights)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 8, 9), (2, 2, 8, 8), (2, 1, 8, 9), (2, 2, 9, 8)])
def test_ab_paired_losses_refuse_an_output_of_the_wrong_shape(shape: tuple[int, ...]) -> None:
    y = torch.zeros(2, 3, 8, 9)
    for kind in ("ab-huber", "ab-l2"):
        with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
            paired_loss(torch.zeros(shape), y, kind)


# ------------------------------------------------------------------------------------ held-out folders
def _source_tree(root: Path) -> dict[str, list[Path]]:
    return {
        "a": _write_images(root / "a", count=2),
        "b": _write_images(root / "b", count=2) + _write_images(root / "b" / "deeper", count=1),
        "bb": _write_images(root / "bb", count=1),  # shares b's prefix, but is another folder
        "top": _write_images(root, count=1),
    }


def test_exclude_leaves_out_the_named_sub_folders_and_only_those(tmp_path: Path) -> None:
    from agincolor.train.data import ImageFolder, find_images

    tree = _source_tree(tmp_path / "data")
    everything = sorted(p for paths in tree.values() for p in paths)
    assert find_images(tmp_path / "data") == everything
    assert find_images(tmp_path / "data", exclude=["b"]) == sorted(tree["a"] + tree["bb"] + tree["top"])
    assert find_images(tmp_path / "data", exclude=["b", "a", "bb"]) == tree["top"]
    assert find_images(tmp_path / "data", exclude=["b/deeper"]) == sorted(set(everything) - set(tree["b"][2:]))
    assert ImageFolder(tmp_path / "data", 36, 32, exclude=("a", "b")).files == sorted(tree["bb"] + tree["top"])


def test_exclude_of_a_folder_that_does_not_exist_is_refused_naming_it(tmp_path: Path) -> None:
    from agincolor.train.data import find_images

    _source_tree(tmp_path / "data")
    with pytest.raises(ValueError, match="'portraits'"):
        find_images(tmp_path / "data", exclude=["a", "portraits"])
    with pytest.raises(ValueError, match="img0.png"):
        find_images(tmp_path / "data", exclude=["img0.png"])  # a file, not a folder
    with pytest.raises(ValueError, match="no images"):
        find_images(tmp_path / "data", exclude=["a", "b", "bb", "."])


def test_trainer_trains_without_the_excluded_sources(tmp_path: Path) -> None:
    tree = _source_tree(tmp_path / "data")
    config = _config(tmp_path / "data", tmp_path / "out", exclude=["b", "bb"], cycle_weight=0.0)
    trainer = Trainer(config, progress=False)
    assert trainer.color_data.files == sorted(tree["a"] + tree["top"])
    assert trainer.config.to_dict()["exclude"] == ["b", "bb"]
    with pytest.raises(ValueError, match="'c'"):
        Trainer(_config(tmp_path / "data", tmp_path / "out", exclude=["c"]), progress=False)


def test_image_folder_names_each_file_by_its_top_level_source(tmp_path: Path) -> None:
    from agincolor.train.data import ImageFolder

    tree = _source_tree(tmp_path / "data")
    data = ImageFolder(tmp_path / "data", 36, 32)
    assert data.source_names == ["", "a", "b", "bb"]  # "" holds the photos straight under the root
    by_source = {
        name: sorted(f for f, k in zip(data.files, data.sources) if data.source_names[k] == name)
        for name in data.source_names
    }
    assert by_source == {"": tree["top"], "a": sorted(tree["a"]), "b": sorted(tree["b"]), "bb": tree["bb"]}


def _source_draws(sampler: Any, sources: list[int], steps: range) -> list[int]:
    return [sources[i] for step in steps for i, _ in sampler.batch_for_step(step)]


def test_source_power_zero_draws_every_source_alike_and_cycles_a_small_one() -> None:
    from agincolor.train.data import StepBatchSampler

    sources = [0] * 60 + [1] * 30 + [2] * 6  # 96 items: shares 0.625, 0.3125, 0.0625 by photo
    plain = StepBatchSampler(96, 8, seed=3, sources=sources, source_power=1.0)
    alike = StepBatchSampler(96, 8, seed=3, sources=sources, source_power=0.0)
    steps = range(600)  # 50 epochs of 12 steps
    for sampler, want in ((plain, [0.625, 0.3125, 0.0625]), (alike, [1 / 3] * 3)):
        draws = torch.tensor(_source_draws(sampler, sources, steps))
        shares = torch.bincount(draws, minlength=3).double() / len(draws)
        assert torch.allclose(shares, torch.tensor(want, dtype=torch.float64), atol=0.02), shares
    # Power 1 is the plain permutation, whatever the sources.
    no_sources = StepBatchSampler(96, 8, seed=3)
    assert [plain.batch_for_step(s) for s in steps] == [no_sources.batch_for_step(s) for s in steps]
    # Within an epoch the small source goes through all six of its items before repeating one.
    order = [int(i) for i in alike._permutation(4) if sources[int(i)] == 2]
    assert len(order) > 12
    for start in range(0, len(order) - 6, 6):
        assert sorted(order[start : start + 6]) == list(range(90, 96))
    half = StepBatchSampler(96, 8, seed=3, sources=sources, source_power=0.5)
    expected = torch.tensor([60, 30, 6], dtype=torch.float64).sqrt()
    assert torch.allclose(half.source_shares, expected / expected.sum())


def test_source_balanced_batches_are_a_function_of_seed_and_step() -> None:
    from agincolor.train.data import StepBatchSampler

    sources = [0] * 40 + [1] * 8
    a = StepBatchSampler(48, 4, seed=7, sources=sources, source_power=0.0)
    b = StepBatchSampler(48, 4, seed=7, sources=sources, source_power=0.0, start_step=25)
    assert [a.batch_for_step(s) for s in range(25, 40)] == list(itertools.islice(iter(b), 15))
    assert a.batch_for_step(30) != StepBatchSampler(48, 4, seed=8, sources=sources, source_power=0.0).batch_for_step(30)
    assert not torch.equal(a._permutation(0), a._permutation(1))
    with pytest.raises(ValueError, match="sources has 3 entries"):
        StepBatchSampler(48, 4, seed=7, sources=[0, 1, 1], source_power=0.0)


def test_trainer_draws_sources_alike_with_source_power_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agincolor.train.data import ImageFolder

    _write_images(tmp_path / "data" / "big", count=12)
    _write_images(tmp_path / "data" / "small", count=2)
    drawn: list[int] = []
    original = ImageFolder.__getitem__

    def recording(self: ImageFolder, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        drawn.append(self.sources[key[0]])
        return original(self, key)

    monkeypatch.setattr(ImageFolder, "__getitem__", recording)
    config = _config(tmp_path / "data", tmp_path / "out", steps=12, batch_size=2, cycle_weight=0.0, source_power=0.0)
    trainer = Trainer(config, progress=False)
    assert trainer.color_data.source_names == ["big", "small"]
    trainer.train()
    # The gray domain draws its own stream from the same folders, so both halves of the tally count.
    small = drawn.count(1) / len(drawn)
    assert 0.3 < small < 0.7, small  # 2 of 14 photos: about 0.14 if every photo were alike


# ----------------------------------------------------------------------------- recipes (--config)
class _RecordingTrainer:
    """Stands in for Trainer in the command line: records the config it is given, trains nothing."""

    configs: list[TrainConfig] = []

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True) -> None:
        self.configs.append(config)
        self.world = type("World", (), {"is_main": False})()

    def train(self) -> dict[str, float]:
        return {}


@pytest.fixture
def recording_cli(monkeypatch: pytest.MonkeyPatch) -> list[TrainConfig]:
    seen: list[TrainConfig] = []
    monkeypatch.setattr(_RecordingTrainer, "configs", seen)
    monkeypatch.setattr("agincolor.train.trainer.Trainer", _RecordingTrainer)
    return seen


RECIPE_TOML = """
# a tiny recipe
data = "photos"
out = "runs/recipe"
encoder = "efficientnet_lite0"
in_channels = 1
paired_loss = "ab-huber"
paired_weight = 1.0
adv_weight = 0.0
cycle_weight = 0.0
content_weight = 0.0
cam_weight = 0.0
base_channels = 8
num_blocks = 1
num_groups = 4
decoder_channels = [24, 16, 12, 8, 4]
pooling = ["avg", "max"]
exclude = ["portraits", "urban"]
steps = 50
lr = 1e-3
flip = false
"""


def test_a_toml_recipe_sets_the_options_and_flags_override_it(tmp_path: Path, recording_cli: list[TrainConfig]) -> None:
    from agincolor.train.cli import main

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE_TOML)
    assert main(["--config", str(recipe), "--no-progress"]) == 0
    assert main(["--config", str(recipe), "--steps", "2", "--lr", "5e-4", "--exclude", "food", "--flip",
                 "--no-progress"]) == 0  # fmt: skip
    from_recipe, overridden = recording_cli
    assert (from_recipe.data, from_recipe.out, from_recipe.encoder, from_recipe.in_channels) == (
        "photos", "runs/recipe", "efficientnet_lite0", 1,
    )  # fmt: skip
    assert from_recipe.paired_loss == "ab-huber" and from_recipe.generator_head == "ab"
    assert from_recipe.decoder_channels == (24, 16, 12, 8, 4) and from_recipe.pooling == ("avg", "max")
    assert from_recipe.exclude == ("portraits", "urban")
    assert (from_recipe.steps, from_recipe.lr, from_recipe.flip) == (50, 1e-3, False)
    assert from_recipe.crop_size == TrainConfig().crop_size  # not in the recipe: the default
    # The command line wins over the recipe; the rest of the recipe stays.
    assert (overridden.steps, overridden.lr, overridden.exclude, overridden.flip) == (2, 5e-4, ("food",), True)
    assert overridden.encoder == "efficientnet_lite0" and overridden.in_channels == 1
    assert dataclasses.replace(overridden, steps=50, lr=1e-3, exclude=("portraits", "urban"), flip=False) == from_recipe


def test_a_json_recipe_works_like_a_toml_one(tmp_path: Path, recording_cli: list[TrainConfig]) -> None:
    import tomllib

    from agincolor.train.cli import load_recipe, main

    values = tomllib.loads(RECIPE_TOML)
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(values))
    assert load_recipe(recipe) == values
    toml = tmp_path / "recipe.toml"
    toml.write_text(RECIPE_TOML)
    assert main(["--config", str(recipe), "--data", "elsewhere"]) == 0
    assert main(["--config", str(toml), "--data", "elsewhere"]) == 0
    assert recording_cli[0] == recording_cli[1] and recording_cli[0].data == "elsewhere"


def test_the_shipped_lite0_recipe_is_a_valid_training_config() -> None:
    from agincolor.train.cli import load_recipe

    values = load_recipe(REPO / "recipes" / "lite0-ab.toml")
    config = TrainConfig(**values)
    assert config.encoder == "efficientnet_lite0" and config.generator_head == "ab" and config.in_channels == 1


def test_a_recipe_with_unknown_options_is_refused_naming_them(
    tmp_path: Path, recording_cli: list[TrainConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    from agincolor.train.cli import load_recipe, main

    recipe = tmp_path / "typo.toml"
    recipe.write_text('data = "photos"\nlearning_rate = 1e-3\nresume = true\nsteps = 2\n')
    with pytest.raises(ValueError, match="learning_rate, resume"):
        load_recipe(recipe)
    with pytest.raises(SystemExit) as info:
        main(["--config", str(recipe)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown options: learning_rate, resume" in err and "typo.toml" in err
    assert recording_cli == []


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("broken.toml", 'data = "photos\nsteps = 2\n', "is not valid TOML"),
        ("broken.json", '{"data": "photos", "steps": 2', "is not valid JSON"),
        ("list.json", '["data", "photos"]', "must hold a table of options"),
        ("recipe.yaml", "data: photos\n", "must be a .toml or .json file"),
    ],
)
def test_an_unreadable_recipe_gives_a_clear_error(
    tmp_path: Path, recording_cli: list[TrainConfig], capsys: pytest.CaptureFixture[str], name: str, text: str,
    message: str,
) -> None:  # fmt: skip
    from agincolor.train.cli import load_recipe, main

    recipe = tmp_path / name
    recipe.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_recipe(recipe)
    with pytest.raises(SystemExit) as info:
        main(["--config", str(recipe), "--data", "photos"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and name in err and "Traceback" not in err
    assert recording_cli == []


def test_a_missing_recipe_or_an_invalid_combination_is_a_usage_error(
    tmp_path: Path, recording_cli: list[TrainConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    from agincolor.train.cli import main

    with pytest.raises(SystemExit):
        main(["--config", str(tmp_path / "absent.toml")])
    err = capsys.readouterr().err
    assert "absent.toml" in err and "does not exist" in err
    recipe = tmp_path / "gray.toml"
    recipe.write_text(RECIPE_TOML)
    with pytest.raises(SystemExit):
        main(["--config", str(recipe), "--cam-weight", "999"])  # one gray channel: no colour input for eq. 7
    assert "cam_weight" in capsys.readouterr().err
    assert recording_cli == []


# ------------------------------------------------------------------------------------- weight decay
def _step_with_zero_gradients(trainer: Trainer) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """One optimizer step of G_g with every gradient zero: (before, after) of each parameter."""
    before = {k: p.detach().clone() for k, p in trainer.G_g.named_parameters()}
    for p in trainer.G_g.parameters():
        p.grad = torch.zeros_like(p)
    trainer._decay_weights(trainer.opt_g)
    trainer.opt_g.step()
    return {k: (before[k], p.detach()) for k, p in trainer.G_g.named_parameters()}


def _per_channel(parameter: torch.Tensor) -> bool:
    """A bias, a normalisation scale or shift, a rho: at most one dimension longer than 1."""
    return sum(n > 1 for n in parameter.shape) <= 1


def test_decoupled_weight_decay_shrinks_each_weight_by_lr_times_decay(data_dir: Path, tmp_path: Path) -> None:
    lr, decay = 1e-3, 0.5
    trainer = Trainer(
        _config(data_dir, tmp_path / "w", lr=lr, weight_decay=decay, decoupled_weight_decay=True), progress=False
    )
    moved = _step_with_zero_gradients(trainer)
    kept = [k for k, (before, _) in moved.items() if _per_channel(before)]
    # Biases, normalisation scales and shifts and every rho are left alone; the paper generator has them all.
    assert any(k.endswith(".rho") for k in kept) and any(k.endswith(".bias") for k in kept)
    assert any(k.endswith(".gamma") for k in kept)
    for key, (before, after) in moved.items():
        expected = before if key in kept else before * (1 - lr * decay)
        assert torch.allclose(after, expected, rtol=0, atol=1e-7), key


def test_coupled_weight_decay_moves_each_weight_by_about_the_learning_rate(data_dir: Path, tmp_path: Path) -> None:
    # The L2 term enters Adam's normalised update: the first step moves every nonzero weight by about lr
    # towards zero, however small the weight (what makes the coupled form collapse tiny parameters).
    lr, decay = 1e-3, 0.5
    trainer = Trainer(_config(data_dir, tmp_path / "w", lr=lr, weight_decay=decay), progress=False)
    moved = _step_with_zero_gradients(trainer)
    checked = 0
    for key, (before, after) in moved.items():
        if _per_channel(before):
            assert torch.equal(after, before), key
            continue
        big = before.abs() > 1e-3
        step = (before - after)[big]
        assert torch.allclose(step, lr * before[big].sign(), rtol=1e-3, atol=1e-7), key
        checked += int(big.sum())
    assert checked > 100


@pytest.mark.parametrize("decoupled", [False, True])
def test_weight_decay_all_decays_every_parameter_as_torch_adam_and_adamw_do(
    data_dir: Path, tmp_path: Path, decoupled: bool
) -> None:
    lr, decay = 1e-3, 0.5
    settings = dict(lr=lr, weight_decay=decay, decoupled_weight_decay=decoupled, weight_decay_all=True)
    trainer = Trainer(_config(data_dir, tmp_path / "w", **settings), progress=False)
    params = list(trainer.G_g.parameters())
    gradients = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gradients)

    def torch_step(weight_decay: float) -> list[torch.Tensor]:
        copies = [p.detach().clone().requires_grad_(True) for p in params]
        for c, p in zip(copies, params):
            c.grad = p.grad.clone()
        optimizer = torch.optim.AdamW if decoupled else torch.optim.Adam
        betas = (trainer.config.beta1, trainer.config.beta2)
        optimizer(copies, lr=lr, betas=betas, weight_decay=weight_decay).step()
        return [c.detach() for c in copies]

    decayed, undecayed = torch_step(decay), torch_step(0.0)
    trainer._decay_weights(trainer.opt_g)
    trainer.opt_g.step()
    for p, expected in zip(params, decayed):
        assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-6)
    # The per-channel parameters moved as decayed ones, not as they would without decay.
    moved_as_decayed = [not torch.allclose(p.detach(), u, rtol=0, atol=1e-6) for p, u in zip(params, undecayed)]
    assert any(moved and _per_channel(p) for moved, p in zip(moved_as_decayed, params))


def test_resumed_run_applies_its_own_weight_decay_and_betas(data_dir: Path, tmp_path: Path) -> None:
    Trainer(_config(data_dir, tmp_path / "run", steps=2, checkpoint_every=2), progress=False).train()
    lr, decay = 1e-3, 0.5
    settings = dict(steps=4, lr=lr, weight_decay=decay, decoupled_weight_decay=True, beta1=0.8)
    resumed = Trainer(_config(data_dir, tmp_path / "run", **settings), resume=True, progress=False)
    assert resumed.step == 2
    for opt in (resumed.opt_g, resumed.opt_d):
        assert all(group["betas"] == (0.8, 0.999) for group in opt.param_groups)  # the checkpoint's were 0.5
    resumed._set_learning_rate()
    group_lr = resumed.opt_g.param_groups[0]["lr"]
    moved = _step_with_zero_gradients(resumed)
    # Zero gradients with the checkpoint's Adam moments still move the weights; the decay is the part of the
    # move proportional to each weight, measured against the same step without decay.
    plain = Trainer(_config(data_dir, tmp_path / "run", steps=4, lr=lr, beta1=0.8), resume=True, progress=False)
    plain._set_learning_rate()
    without = _step_with_zero_gradients(plain)
    for key, (before, after) in moved.items():
        expected = without[key][1] - (0 if _per_channel(before) else group_lr * decay * before)
        assert torch.allclose(after, expected, rtol=0, atol=1e-6), key


@pytest.mark.parametrize("name", ["decoupled_weight_decay", "weight_decay_all"])
@pytest.mark.parametrize("bad", [dict(value=True), dict(value=1, weight_decay=0.1)])
def test_config_refuses_a_weight_decay_switch_without_decay_or_as_a_non_bool(name: str, bad: dict) -> None:
    settings = {k: v for k, v in bad.items() if k != "value"}
    with pytest.raises(ValueError, match=name):
        TrainConfig(data="x", **{name: bad["value"]}, **settings)
