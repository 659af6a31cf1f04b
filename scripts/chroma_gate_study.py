"""Can a colorizer tell, from the gray photo alone, how much colour to give it? A study, not a feature.

Muted photos (overcast streets, snow) lose the most against their gray input, and a photo's best chroma
scale varies a lot from one photo to the next. This script asks whether a per-photo scale can be
*predicted*: it records, for every photo, features the model already computes and the photo's PSNR at a
grid of chroma scales, then fits a ridge regression from the features to the PSNR change at each scale
on the ``--fit`` folders and applies its best scale to the ``--test`` folders. It prints PSNR against the
gray input for fixed scales, for the fitted gates and for the oracle (each photo's best scale on the
grid), and how well each feature set predicts a photo's true mean chroma within each test folder. A
gate's column "fit folders, each left out" scores every fit folder with the gate fitted on the others:
the fair way to choose a feature set and lambda, since picking them on the test folders flatters them.

Features: ``pooled``, the CAM-attended bottleneck averaged over the photo (what the gamma/beta MLP
sees); ``deep``, the encoder's last stage averaged; ``hist``, the predicted colour distribution averaged
over the photo (square root); ``lum``, a 16-bin luminance histogram with its mean and spread.

    python scripts/chroma_gate_study.py --model runs/s5_hold/colorizer --temperature 0.8 \\
        --fit landscape=../shared/data/train/landscape ... --test urban=../shared/data/train/urban ... \\
        --cache runs/gate/twin.npz

Fit on folders the model trained on and test on folders it did not (a held-out twin), so that the gate
meets photos as unfamiliar as a user's. The protocol is ``agincolor evaluate``'s (256x256, PIL's
``convert("L")``); the photos are taken with ``evaluate_sources.py``'s spread (every k-th).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_sources import gray_psnr, load_colorizer, parse_folders  # noqa: E402

from agincolor import Colorizer  # noqa: E402
from agincolor import image_processor as ip  # noqa: E402
from agincolor.evaluate import EVAL_SIZE, _capped_psnr, _load_256  # noqa: E402
from agincolor.metrics import _lab_of, colorfulness  # noqa: E402

SCALES = np.array([0, 0.25, 0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0], dtype=np.float32)
FEATURE_SETS = ("lum", "hist", "pooled", "deep", "pooled+hist", "deep+pooled+hist+lum")


def record(colorizer: Colorizer, folders: dict[str, list[Path]], temperature: float) -> dict[str, np.ndarray]:
    """Per photo: its folder, features, gray PSNR, PSNR and colourfulness at each scale, true mean chroma."""
    G = colorizer.generator.eval()
    grab: dict[str, torch.Tensor] = {}
    hooks = [
        G.mlp.register_forward_hook(lambda m, i, o: grab.__setitem__("pooled", i[0].detach())),
        G.bridge.register_forward_hook(lambda m, i, o: grab.__setitem__("deep", i[0].detach().mean((2, 3)))),
    ]
    rows: dict[str, list] = {k: [] for k in ("src", "deep", "pooled", "hist", "lum", "gray_psnr", "psnr", "colf", "truth_chroma")}
    shape = ip.working_shape(EVAL_SIZE, EVAL_SIZE, colorizer.working_size)
    try:
        for name, files in folders.items():
            for path in files:
                truth_img = _load_256(path)
                truth = np.asarray(truth_img)
                gray = truth_img.convert("L")
                prepared = ip.prepare_pil(gray)
                small = torch.from_numpy(ip.resize_gray(prepared.gray, shape)[None, None].copy())
                with torch.no_grad():
                    logits = G(small * 2 - 1).image.float()
                    ab = colorizer.chroma_of(logits, temperature, gray=small)[0].numpy()
                    hist = torch.softmax(logits, 1).mean((2, 3))[0].numpy()
                psnrs, colfs = [], []
                for s in SCALES:
                    rgb = ip.join_lightness_and_chroma(prepared.lightness, ab * s)
                    psnrs.append(_capped_psnr(rgb, truth))
                    colfs.append(colorfulness(rgb))
                lum = prepared.gray
                true_ab = _lab_of(truth.astype(np.float64))[1:]
                rows["src"].append(name)
                rows["deep"].append(grab["deep"][0].numpy().copy())
                rows["pooled"].append(grab["pooled"][0].numpy().copy())
                rows["hist"].append(hist.copy())
                rows["lum"].append(np.concatenate([np.histogram(lum, 16, (0, 1))[0] / lum.size, [lum.mean(), lum.std()]]))
                rows["gray_psnr"].append(gray_psnr(truth_img))
                rows["psnr"].append(psnrs)
                rows["colf"].append(colfs)
                rows["truth_chroma"].append(float(np.hypot(true_ab[0], true_ab[1]).mean()))
            print(f"recorded {name}: {len(files)} photos", file=sys.stderr, flush=True)
    finally:
        for h in hooks:
            h.remove()
    return {k: np.asarray(v) for k, v in rows.items()}


def features(data: dict[str, np.ndarray], kind: str) -> np.ndarray:
    parts = {"pooled": data["pooled"], "deep": data["deep"], "hist": np.sqrt(data["hist"]), "lum": data["lum"]}
    return np.concatenate([parts[k].astype(np.float64) for k in kind.split("+")], axis=1)


def ridge(X: np.ndarray, Y: np.ndarray, fit: np.ndarray, lam: float) -> np.ndarray:
    """Predictions for every row of X from a ridge regression fitted on the rows ``fit`` (standardised)."""
    mu, sd = X[fit].mean(0), X[fit].std(0) + 1e-6
    Z = np.c_[(X - mu) / sd, np.ones(len(X))]
    W = np.linalg.solve(Z[fit].T @ Z[fit] + lam * np.eye(Z.shape[1]), Z[fit].T @ Y[fit])
    return Z @ W


def width_scaled(lam: float, X: np.ndarray) -> float:
    """A ridge lambda given per 100 standardised features, scaled to the width of ``X``."""
    return lam * X.shape[1] / 100


def report(data: dict[str, np.ndarray], test_names: list[str], muted_db: float) -> None:
    src, P, C, g = data["src"], data["psnr"], data["colf"], data["gray_psnr"]
    test = np.isin(src, test_names)
    fit = ~test
    rows = np.arange(len(P))
    fit_names = list(dict.fromkeys(src[fit].tolist()))
    groups = [(n, src == n) for n in test_names] + [("test pooled", test)]
    print(
        "| scale rule | fit folders, each left out | "
        + " | ".join(n for n, _ in groups)
        + f" | test, gray >= {muted_db:g} dB | test colourfulness | test mean scale |"
    )
    print("| --- |" + " ---: |" * (len(groups) + 4))

    def vs_gray(choice: np.ndarray, sel: np.ndarray) -> float:
        return float(P[rows, choice][sel].mean() - g[sel].mean())

    def line(name: str, choice: np.ndarray, left_out: np.ndarray) -> None:
        muted = test & (g >= muted_db)
        cells = [f"{vs_gray(left_out, fit):+.2f}"] + [f"{vs_gray(choice, sel):+.2f}" for _, sel in groups]
        cells.append(f"{vs_gray(choice, muted):+.2f} ({muted.sum()})" if muted.any() else "-")
        cells += [f"{C[rows, choice][test].mean():.1f}", f"{SCALES[choice][test].mean():.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")

    for k, s in enumerate(SCALES):
        if 0.7 <= s <= 1.3:
            fixed = np.full(len(P), k)
            line(f"fixed {s:g}", fixed, fixed)
    line("oracle (each photo's best)", P.argmax(1), P.argmax(1))
    gain = P - P[:, [int(np.argmin(abs(SCALES - 1.0)))]]
    for kind in FEATURE_SETS:
        X = features(data, kind)
        for lam in (10, 100, 1000):
            lam_x = width_scaled(lam, X)
            # Leave-one-source-out on the fit folders: each fit folder scored by a gate fitted on the others,
            # the honest way to choose features and lambda without looking at the test folders.
            left_out = np.zeros(len(P), dtype=int)
            for name in fit_names:
                left_out[src == name] = ridge(X, gain, fit & (src != name), lam_x)[src == name].argmax(1)
            line(f"ridge on {kind}, lambda {lam}", ridge(X, gain, fit, lam_x).argmax(1), left_out)
    print("\nCorrelation of predicted with true log mean chroma, within each test folder (ridge fitted on the fit folders):")
    y = np.log1p(data["truth_chroma"])
    for kind in ("lum", "hist", "pooled", "deep"):
        X = features(data, kind)
        pred = ridge(X, y, fit, width_scaled(100, X))
        cells = ", ".join(f"{n} {np.corrcoef(pred[src == n], y[src == n])[0, 1]:+.2f}" for n in test_names)
        print(f"- {kind}: fit folders {np.corrcoef(pred[fit], y[fit])[0, 1]:+.2f}; {cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bundled", help="an ab-bins Colorizer folder, or 'bundled'")
    parser.add_argument("--fit", action="append", default=[], metavar="NAME=DIR", help="folders the gate is fitted on")
    parser.add_argument("--test", action="append", default=[], metavar="NAME=DIR", help="folders it is tested on")
    parser.add_argument("--fit-limit", type=int, default=250, help="photos per fit folder, spread evenly")
    parser.add_argument("--test-limit", type=int, default=300, help="photos per test folder, spread evenly")
    parser.add_argument("--temperature", type=float, default=None, help="annealed-mean temperature (default: the model's)")
    parser.add_argument("--muted-db", type=float, default=28.0, help="gray PSNR from which a test photo counts as muted")
    parser.add_argument("--cache", type=Path, default=None, help="save the records here, or reuse them if it exists")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.cache is not None and args.cache.exists():
        data = dict(np.load(args.cache))
        test_names = [n for n in dict.fromkeys(data["src"].tolist()) if n in {t.partition("=")[0] for t in args.test}]
    else:
        if not args.fit or not args.test:
            parser.error("give --fit and --test folders (or an existing --cache)")
        colorizer = load_colorizer(args.model)
        if colorizer.ab_bins is None:
            parser.error("the study needs an ab-bins model (its predicted distribution is one feature set)")
        if not hasattr(colorizer.generator, "bridge"):
            parser.error("the study needs a pretrained-encoder generator (its encoder's last stage is one feature set)")
        test = parse_folders(args.test, args.test_limit, parser)
        folders = {**test, **parse_folders(args.fit, args.fit_limit, parser)}
        data = record(colorizer, folders, args.temperature or colorizer.temperature)
        if args.cache is not None:
            np.savez(args.cache, **data)
        test_names = list(test)
    if not test_names:
        parser.error("none of the --test folders is in the records")
    report(data, test_names, args.muted_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
