"""Does a colorizer know *where* green and blue belong? Ranking scores against a local-statistics baseline.

    python scripts/hue_probe.py --photos ../shared/data/val/bsds500 --limit 200 --model src/agincolor/pretrained
    python scripts/hue_probe.py --photos ../shared/data/val/bsds500 --baseline-train data/train128

For each ``--model`` (a Colorizer folder; several may be given), each photo is cut to ``--size`` (128) px,
colorized from its gray version, and every pixel is scored by the hue the model gives it: minus its CIELAB
a* for green, minus its b* for blue. The printed AUC is the area under the ROC curve of that score for
telling the truly green pixels (a* < -10, mostly vegetation) or blue ones (b* < -10, sky and water) from
the rest: 0.5 is chance, 1 a perfect ranking. Unlike the chroma recall of ``agincolor evaluate``, it does
not depend on how strongly the model colours, only on whether it puts the hue in the right places.

``--baseline-train DIR`` also fits the yardstick: a small MLP that sees only hand-made local statistics of
the gray photo at 64 px (lightness; mean and standard deviation over 3, 7 and 15 px windows; gradient
magnitudes; the row; the photo's mean lightness and contrast), trained on every third photo of DIR to
tell each pixel's hue, and scored the same way (on 64 px photos). A model that does no better than it
tells hues from local brightness and texture, not from what the photo shows.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from agincolor import Colorizer
from agincolor.evaluate import list_images
from agincolor.metrics import HUES, RECALL_THRESHOLD, _lab_of


def roc_auc(score: torch.Tensor, positive: torch.Tensor) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` (bool), by the rank-sum formula (ties by order)."""
    ranks = torch.empty(len(score), dtype=torch.float64)
    ranks[torch.argsort(score)] = torch.arange(1, len(score) + 1, dtype=torch.float64)
    p = int(positive.sum())
    n = len(score) - p
    if p == 0 or n == 0:
        return float("nan")
    return float((ranks[positive].sum() - p * (p + 1) / 2) / (p * n))


def lab_of(image: Image.Image) -> torch.Tensor:
    """(3, H, W) CIELAB of a PIL image, converted as the chroma recall of ``agincolor evaluate`` does."""
    return torch.from_numpy(_lab_of(np.asarray(image.convert("RGB"), dtype=np.float64))).float()


def towards(lab: torch.Tensor, hue: str) -> torch.Tensor:
    """Each entry's component towards ``hue`` (:data:`agincolor.metrics.HUES`: minus a* for green, minus b* for blue)."""
    channel, sign = HUES[hue]
    return sign * lab[channel]


def hue_aucs(
    colorize: Callable[[Image.Image], torch.Tensor], photos: list[Path], size: int, stride: int = 3
) -> dict[str, float]:
    """Green and blue AUCs of ``colorize`` (a photo cut to ``size`` x ``size`` -> its (3, size, size) CIELAB)."""
    scores, truths = [], []
    for path in photos:
        photo = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
        truths.append(lab_of(photo).flatten(1)[:, ::stride])
        scores.append(colorize(photo).flatten(1)[:, ::stride])
    s, t = torch.cat(scores, 1), torch.cat(truths, 1)
    return {hue: roc_auc(towards(s, hue), towards(t, hue) > RECALL_THRESHOLD) for hue in HUES}


def model_scores(model: str, photos: list[Path], size: int, stride: int = 3) -> dict[str, float]:
    colorizer = Colorizer.from_pretrained(model)
    return hue_aucs(lambda photo: lab_of(colorizer.colorize(photo.convert("L"))), photos, size, stride)


def local_features(path: Path, size: int = 64, stride: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels, 13) gray-only features and (3, pixels) true CIELAB of every ``stride``-th pixel."""
    lab = lab_of(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR))[None]
    light = lab[:, :1] / 100.0
    columns = [light]
    for k in (3, 7, 15):
        pad = (k // 2,) * 4
        mean = F.avg_pool2d(F.pad(light, pad, mode="reflect"), k, 1)
        square = F.avg_pool2d(F.pad(light * light, pad, mode="reflect"), k, 1)
        columns += [mean, (square - mean * mean).clamp_min(0).sqrt()]
    grad_y, grad_x = torch.gradient(light[0, 0])
    rows = torch.linspace(0, 1, size).view(1, 1, size, 1).expand_as(light)
    columns += [grad_x.abs()[None, None], grad_y.abs()[None, None], rows]
    columns += [light.mean().expand_as(light), light.std().expand_as(light)]
    features = torch.cat(columns, 1)[0].flatten(1).T[::stride]
    return features, lab[0].flatten(1)[:, ::stride]


def baseline_scores(train: list[Path], photos: list[Path], steps: int = 1500, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)
    xs, labs = zip(*(local_features(p) for p in train))
    x, lab = torch.cat(xs), torch.cat(labs, 1)
    mean, std = x.mean(0), x.std(0) + 1e-6
    vxs, vlabs = zip(*(local_features(p) for p in photos))
    vx, vlab = torch.cat(vxs), torch.cat(vlabs, 1)
    result = {}
    for hue in HUES:
        label = (towards(lab, hue) > RECALL_THRESHOLD).float()
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
        )
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        for _ in range(steps):
            i = torch.randint(0, len(x), (4096,))
            loss = F.binary_cross_entropy_with_logits(net((x[i] - mean) / std)[:, 0], label[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            result[hue] = roc_auc(net((vx - mean) / std)[:, 0], towards(vlab, hue) > RECALL_THRESHOLD)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", required=True, help="folder of colour photos to score on")
    parser.add_argument("--limit", type=int, default=None, help="first N photos only")
    parser.add_argument("--model", action="append", default=[], help="Colorizer folder (repeatable)")
    parser.add_argument("--size", type=int, default=128, help="side the photos are cut to for the models")
    parser.add_argument("--baseline-train", default=None, help="training photos for the local-statistics MLP")
    args = parser.parse_args()
    photos = list_images(args.photos)[: args.limit]
    print(f"{len(photos)} photos from {args.photos}; AUC of the hue ranking (0.5 chance, 1 perfect)")
    print("| scorer | green AUC | blue AUC |\n| --- | ---: | ---: |")
    for model in args.model:
        r = model_scores(model, photos, args.size)
        print(f"| {model} | {r['green']:.3f} | {r['blue']:.3f} |", flush=True)
    if args.baseline_train:
        train = list_images(args.baseline_train)[::3]
        r = baseline_scores(train, photos)
        print(f"| local statistics MLP ({len(train)} photos of {args.baseline_train}) | {r['green']:.3f} | {r['blue']:.3f} |")


if __name__ == "__main__":
    main()
