"""Refit an ab-bins model's output layer to its body's features, and say how far it was from its optimum.

The output layer of an ab-bins Colorizer is a 1x1 conv from the finest decoder stage's features to the
484 bin scores: per pixel, a multinomial logistic regression on those features. With the body frozen,
the best such layer for the training photos is a convex problem, so it can be solved outright instead of
by the few hundred small Adam steps a CPU continuation gives it (Adam moves each weight by about the
learning rate per step, and this layer's weights are large: a continuation hardly moves it).

The script runs the model on ``--photos`` training crops (the training recipe's: 128 px, random-resized
from half to all of the photo, flipped), keeps the head's input features and the true bin at
``--pixels`` random pixels of each, fits the layer on four fifths of the photos by L-BFGS from its
current weights, and prints the cross-entropy before and after on the pixels of the other fifth (photos
the fit never saw), with the layer's singular values. It writes the refitted model to OUT (a new folder)
with the source's decoding settings.

    python scripts/refit_head.py src/agincolor/pretrained runs/refit --data ../shared/data/train
    python scripts/evaluate_sources.py --model runs/refit --folder val=../shared/data/val/bsds500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from agincolor import Colorizer
from agincolor.train.data import ImageFolder
from agincolor.train.losses import _ab_bin_index
from agincolor.train.trainer import to_gray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_sources import load_colorizer  # noqa: E402


def head_layer(model: Colorizer) -> torch.nn.Conv2d:
    """The 1x1 output layer of an ab-bins model; anything else is refused."""
    if model.ab_bins is None or model.generator.head_kind != "logits":
        raise ValueError("only an ab-bins model (a 'logits' head over ab bins) has an output layer to refit")
    return model.generator.head[0]


@torch.no_grad()
def head_features(
    model: Colorizer, data: ImageFolder, photos: int, pixels: int, seed: int = 0, batch_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The output layer's inputs ``(n, C)``, the true bins ``(n,)`` and the photo of each, at ``pixels``
    random pixels of each of ``photos`` random crops of ``data``."""
    conv = head_layer(model)
    generator = model.generator.eval().float()
    rng = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(data), generator=rng)[:photos].tolist()
    kept: dict[str, torch.Tensor] = {}
    hook = conv.register_forward_hook(lambda module, inputs, output: kept.__setitem__("f", inputs[0]))
    xs, ys, ids = [], [], []
    try:
        for start in range(0, len(chosen), batch_size):
            batch = chosen[start : start + batch_size]
            color = torch.stack([data[(i, seed * 1_000_003 + i)][0] for i in batch])
            generator(to_gray(color)[:, : generator.in_channels])
            f = kept["f"].float().flatten(2)  # (B, C, H*W)
            bins = _ab_bin_index(color, **model.ab_bins).flatten(1)
            pick = torch.randint(0, f.shape[-1], (len(batch), pixels), generator=rng)
            xs.append(torch.gather(f, 2, pick[:, None].expand(-1, f.shape[1], -1)).transpose(1, 2).reshape(-1, f.shape[1]))
            ys.append(torch.gather(bins, 1, pick).reshape(-1))
            ids.append(torch.arange(start, start + len(batch)).repeat_interleave(pixels))
    finally:
        hook.remove()
    return torch.cat(xs), torch.cat(ys), torch.cat(ids)


def _mean_cross_entropy(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(x @ weight.T + bias, y)


def cross_entropy(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(_mean_cross_entropy(weight, bias, x, y))


def fit_head(
    weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor, iterations: int = 80
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer ``(weight (Q, C), bias (Q,))`` of least mean cross-entropy on ``x``, ``y``, by L-BFGS from the given one."""
    w = weight.detach().clone().float().requires_grad_(True)
    b = bias.detach().clone().float().requires_grad_(True)
    optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _mean_cross_entropy(w, b, x, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach(), b.detach()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="ab-bins Colorizer folder (or 'bundled')")
    parser.add_argument("out", type=Path, help="new folder for the refitted model (must not exist)")
    parser.add_argument("--data", required=True, help="training photos (a folder tree, one sub-folder per source)")
    parser.add_argument("--exclude", default="", help="comma-separated source folders to leave out (a held-out twin's)")
    parser.add_argument("--photos", type=int, default=3000, help="training crops to collect features from")
    parser.add_argument("--pixels", type=int, default=256, help="random pixels kept per crop")
    parser.add_argument("--iterations", type=int, default=80, help="L-BFGS iterations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    if args.photos < 5 or args.pixels < 1 or args.iterations < 1:
        parser.error("--photos must be at least 5, --pixels and --iterations at least 1")
    try:
        model = load_colorizer(args.source, local_files_only=True)
        conv = head_layer(model)
        exclude = [name for name in args.exclude.split(",") if name]
        data = ImageFolder(args.data, load_size=128, crop_size=128, flip=True, scale_min=0.5, exclude=exclude)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    if len(data) < 2:
        parser.error(f"{args.data} has {len(data)} photo(s) to draw from; at least 2 are needed (one is held out)")
    x, y, ids = head_features(model, data, args.photos, args.pixels, args.seed)
    drawn = int(ids.max()) + 1
    fit = ids < min(round(0.8 * drawn), drawn - 1)  # at least one photo held out
    weight, bias = conv.weight.detach().flatten(1).float(), conv.bias.detach().float()
    new_weight, new_bias = fit_head(weight, bias, x[fit], y[fit], args.iterations)
    print(f"{int(fit.sum())} pixels of {int(ids[fit].max()) + 1} photos fitted, {int((~fit).sum())} held out")
    for name, (w, b) in (("before", (weight, bias)), ("after", (new_weight, new_bias))):
        train, test = cross_entropy(w, b, x[fit], y[fit]), cross_entropy(w, b, x[~fit], y[~fit])
        values = ", ".join(f"{v:.2f}" for v in torch.linalg.svdvals(w).tolist())
        print(f"{name:>6}: cross-entropy {train:.4f} fitted photos, {test:.4f} held-out photos; singular values {values}")
    with torch.no_grad():
        conv.weight.copy_(new_weight.view_as(conv.weight).to(conv.weight.dtype))
        conv.bias.copy_(new_bias.to(conv.bias.dtype))
    model.save_pretrained(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
