"""Three post-processing studies of an ab-bins model's decoded chroma, each against the shipped pipeline.

The Colorizer decodes each pixel's bin distribution into one ab at the working size, scales it by the
saturation, upsamples it bilinearly to the photo's size and joins it with the photo's own lightness.
Each study changes one step and reports the mean PSNR (the protocol of ``agincolor evaluate``: photos
at 256x256, the gray input from PIL's ``convert("L")``), the per-photo difference from the shipped
pipeline with its standard error, the colourfulness, and the muted photos' PSNR against their gray
input (gray input at least 28 dB), for each folder and, with several, pooled. ``--temperature``,
``--saturation`` and ``--decoding`` set the shipped pipeline (default: each model's own):

``upsample``: joint bilateral upsampling (Kopf et al. 2007) instead of bilinear. Each full-size pixel
averages the working-size ab of its ``2 r`` x ``2 r`` nearest working-size pixels, weighted by a
Gaussian of their distance (``sigma_s`` working-size pixels) times a Gaussian of the difference
between its own lightness and theirs (``sigma_r`` L* units), so colour edges snap to lightness edges.
The truth's own chroma, shrunk to the working size and brought back both ways, bounds what any
upsampling can gain.

``curves``: per-pixel chroma curves that shrink faint colours more than vivid ones, against a uniform
saturation at matched colourfulness: a soft threshold ``ab max(0, 1 - k / |ab|)``, a ratio
``ab |ab| / (|ab| + k)``, and a Wiener-like gain ``ab |ab|^2 / (|ab|^2 + beta var)`` with ``var`` the
variance of the pixel's tempered bin distribution in ab.

``hue-gains``: a gain for each of ``--sectors`` hue sectors of the predicted ab (interpolated between
sector centres), fitted by least squares of the predicted against the true ab over the ``--fit``
folders' photos as ``--fit-model`` colours them, then applied to ``--model``'s colours of the ``--test``
folders; with one model and no ``--test``, each ``--fit`` folder is scored with the gains fitted on the
others. ``--photo-weighted`` weighs each photo's pixels by the inverse of its mean squared error (plus
20), the decibel scale PSNR averages on.

    python scripts/chroma_studies.py upsample --folder val=../shared/data/val/bsds500 --limit 100
    python scripts/chroma_studies.py curves --folder val=../shared/data/val/bsds500
    python scripts/chroma_studies.py hue-gains --fit-model /tmp/v06/src/agincolor/pretrained \\
        --fit portraits=../shared/data/train/portraits --fit urban=../shared/data/train/urban \\
        --fit food=../shared/data/train/food --limit 300 --test val=../shared/data/val/bsds500
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from agincolor import Colorizer
from agincolor import image_processor as ip
from agincolor.color import ab_from_bin_logits
from agincolor.colorizer import DECODINGS
from agincolor.evaluate import _capped_psnr, _load_256
from agincolor.metrics import colorfulness

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_sources import gray_psnr, load_colorizer, parse_folders  # noqa: E402

MUTED_DB = 28.0


class Photo(NamedTuple):
    """One photo as a model sees it: its folder, lightness, truth, gray PSNR and working-size chroma."""

    folder: str
    lightness: np.ndarray  # (H, W) L* of the gray input
    truth: np.ndarray  # (H, W, 3) uint8
    gray_db: float
    ab: np.ndarray  # (2, h, w) the model's decoded ab, before saturation
    variance: np.ndarray  # (1, h, w) variance of the tempered bin distribution in ab
    lightness_small: np.ndarray  # (h, w) L* at the working size
    truth_ab_small: np.ndarray  # (2, h, w) the truth's ab at the working size


def load_photos(colorizer: Colorizer, folders: dict[str, list[Path]], temperature: float | None) -> list[Photo]:
    """Every photo of ``folders`` run once through ``colorizer`` (an ab-bins model) at ``temperature``."""
    if colorizer.ab_bins is None:
        raise ValueError("these studies need a model that predicts ab bins")
    t = colorizer.temperature if temperature is None else temperature
    centers = colorizer.ab_centers.float()
    generator = colorizer.generator.eval()
    photos = []
    for name, files in folders.items():
        for path in files:
            rgb = _load_256(path)
            item, _ = ip.prepare_image(rgb.convert("L"))
            shape = colorizer.working_shape(*item.gray.shape)
            small = torch.from_numpy(ip.resize_gray(item.gray, shape).copy())[None, None]
            with torch.no_grad():
                scores = generator((small * 2 - 1).clamp(-1, 1)).image.float()
                ab = colorizer.chroma_of(scores, t, gray=small)[0].numpy()
                p = torch.softmax(scores / t, dim=1)[0]
                mean = ab_from_bin_logits(scores, centers, t)[0]
                second = torch.einsum("khw,k->hw", p, (centers**2).sum(1))
                variance = (second - (mean**2).sum(0)).clamp_min(0)[None].numpy()
            truth = np.asarray(rgb)
            lab = ip.srgb_to_lab(truth / 255.0).astype(np.float32)
            photos.append(
                Photo(
                    name, item.lightness, truth, gray_psnr(rgb), ab, variance, ip.resize_gray(item.lightness, shape),
                    np.stack([ip.resize_gray(lab[..., i], shape) for i in (1, 2)]),
                )
            )  # fmt: skip
    return photos


def joint_bilateral_upsample(
    ab: np.ndarray, lightness: np.ndarray, lightness_small: np.ndarray, radius: int = 2, sigma_s: float = 1.0, sigma_r: float = 8.0
) -> np.ndarray:
    """Working-size ``ab`` (2, h, w) to the size of ``lightness`` (H, W), guided by it (see the module text)."""
    _, h, w = ab.shape
    big_h, big_w = lightness.shape
    py = (np.arange(big_h) + 0.5) * h / big_h - 0.5
    px = (np.arange(big_w) + 0.5) * w / big_w - 0.5
    cy, cx = np.floor(py).astype(np.intp), np.floor(px).astype(np.intp)
    offsets = range(1 - radius, radius + 1)
    near = {}
    for dy in offsets:
        for dx in offsets:
            qy, qx = np.clip(cy + dy, 0, h - 1), np.clip(cx + dx, 0, w - 1)
            near[dy, dx] = (qy, qx, (lightness - lightness_small[np.ix_(qy, qx)]) ** 2)
    # Range distances are taken relative to each pixel's nearest lightness among its neighbours: the same
    # factor on all its weights, so the average is unchanged, but never all of them underflowing to 0.
    closest = np.minimum.reduce([d for _, _, d in near.values()])
    total = np.zeros((2, big_h, big_w))
    weight = np.zeros((big_h, big_w))
    for (dy, dx), (qy, qx, dist) in near.items():
        wy = np.exp(-((py - (cy + dy)) ** 2) / (2 * sigma_s**2))
        wx = np.exp(-((px - (cx + dx)) ** 2) / (2 * sigma_s**2))
        wgt = wy[:, None] * wx[None, :] * np.exp(-(dist - closest) / (2 * sigma_r**2))
        total += wgt * ab[:, qy][:, :, qx]
        weight += wgt
    return (total / weight).astype(np.float32)


def hue_weights(ab: np.ndarray, sectors: int) -> np.ndarray:
    """(2, N) ab -> (sectors, N): each pixel's share of the two hue sectors whose centres surround its hue."""
    pos = (np.arctan2(ab[1], ab[0]) % (2 * np.pi)) / (2 * np.pi) * sectors
    low = np.floor(pos).astype(np.intp) % sectors
    frac = pos - np.floor(pos)
    out = np.zeros((sectors, ab.shape[1]))
    cols = np.arange(ab.shape[1])
    out[low, cols] = 1 - frac
    out[(low + 1) % sectors, cols] += frac
    return out


def fit_hue_gains(photos: list[Photo], sectors: int, photo_weighted: bool, saturation: float) -> np.ndarray:
    """Least-squares gain per hue sector of predicted ab against the truth's (ridge 1e-3 of the mean diagonal)."""
    gram = np.zeros((sectors, sectors))
    moment = np.zeros(sectors)
    for photo in photos:
        ab = photo.ab.reshape(2, -1).astype(np.float64)
        truth = photo.truth_ab_small.reshape(2, -1).astype(np.float64)
        weight = 1.0
        if photo_weighted:
            weight = 1.0 / (((ab * saturation - truth) ** 2).sum(0).mean() + 20.0)
        design = (hue_weights(ab, sectors)[:, None, :] * ab[None]).reshape(sectors, -1)  # (K, 2N)
        gram += weight * design @ design.T
        moment += weight * design @ truth.reshape(-1)
    ridge = 1e-3 * np.trace(gram) / sectors
    return np.linalg.solve(gram + ridge * np.eye(sectors), moment)


def apply_hue_gains(ab: np.ndarray, gains: np.ndarray) -> np.ndarray:
    flat = ab.reshape(2, -1)
    return (flat * (gains @ hue_weights(flat, len(gains)))).reshape(ab.shape).astype(np.float32)


Arm = Callable[[Photo], np.ndarray]  # a photo -> its uint8 RGB output


def bilinear(saturation: float) -> Arm:
    return lambda p: ip.join_lightness_and_chroma(p.lightness, p.ab * np.float32(saturation))


def score_by_folder(photos: list[Photo], arms: dict[str, Arm], reference: str) -> None:
    """:func:`score` for each folder of ``photos`` and, with several, for all of them pooled."""
    folders = list(dict.fromkeys(p.folder for p in photos))
    for name in folders:
        print(f"\n{name} ({sum(p.folder == name for p in photos)} photos)")
        score([p for p in photos if p.folder == name], arms, reference)
    if len(folders) > 1:
        print(f"\npooled ({len(photos)} photos)")
        score(photos, arms, reference)


def score(photos: list[Photo], arms: dict[str, Arm], reference: str) -> list[dict]:
    """Each arm's mean PSNR, per-photo difference from ``reference`` (mean, standard error, share better),
    colourfulness, and the muted photos' PSNR against their gray input; printed as a table and returned."""
    psnr, colour = {}, {}
    for name, arm in arms.items():
        outputs = [(arm(p), p) for p in photos]
        psnr[name] = np.array([_capped_psnr(rgb, p.truth) for rgb, p in outputs])
        colour[name] = float(np.mean([colorfulness(rgb) for rgb, _ in outputs]))
    gray = np.array([p.gray_db for p in photos])
    muted = gray >= MUTED_DB
    rows = []
    print(f"| arm | PSNR | vs {reference} (s.e.) | better | colourfulness | muted vs gray ({muted.sum()}) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in arms:
        diff = psnr[name] - psnr[reference]
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        muted_db = float((psnr[name][muted] - gray[muted]).mean()) if muted.any() else None
        row = dict(arm=name, psnr=float(psnr[name].mean()), diff=float(diff.mean()), se=float(se),
                   better=float((diff > 0).mean()), colourfulness=float(colour[name]), muted=muted_db)  # fmt: skip
        rows.append(row)
        print(f"| {name} | {row['psnr']:.3f} | {row['diff']:+.4f} ({se:.4f}) | {row['better']:.0%} | {row['colourfulness']:.1f} | {'-' if muted_db is None else f'{muted_db:+.2f}'} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=("upsample", "curves", "hue-gains"))
    parser.add_argument("--model", default="bundled", help="Colorizer folder, or 'bundled'")
    parser.add_argument("--folder", action="append", default=[], metavar="NAME=DIR", help="upsample and curves: photos")
    parser.add_argument("--fit", action="append", default=[], metavar="NAME=DIR", help="hue-gains: folders to fit on")
    parser.add_argument("--fit-model", default=None, help="hue-gains: the model whose colours are fitted (default --model)")
    parser.add_argument("--test", action="append", default=[], metavar="NAME=DIR", help="hue-gains: folders to score")
    parser.add_argument("--sectors", type=int, default=8)
    parser.add_argument("--photo-weighted", action="store_true")
    parser.add_argument("--limit", type=int, default=None, help="photos per folder, spread evenly")
    parser.add_argument("--temperature", type=float, default=None, help="default: the model's own")
    parser.add_argument("--saturation", type=float, default=None, help="the shipped pipeline's (default: the model's own)")
    parser.add_argument("--decoding", choices=DECODINGS, default=None, help="of every model's bins (default: each model's own)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def load(name: str) -> Colorizer:
        colorizer = load_colorizer(name, local_files_only=True)
        if args.decoding:
            colorizer.decoding = args.decoding
        return colorizer

    try:
        model = load(args.model)
        sat = model.saturation if args.saturation is None else args.saturation
        if args.study in ("upsample", "curves"):
            if not args.folder:
                parser.error(f"{args.study} needs at least one --folder")
            photos = load_photos(model, parse_folders(args.folder, args.limit, parser), args.temperature)
        else:
            if not args.fit:
                parser.error("hue-gains needs at least one --fit folder")
            fit_model = load(args.fit_model) if args.fit_model else model
            fit_photos = load_photos(fit_model, parse_folders(args.fit, args.limit, parser), args.temperature)
            tests = load_photos(model, parse_folders(args.test, args.limit, parser), args.temperature) if args.test else []
    except (OSError, ValueError) as err:
        parser.error(str(err))

    shipped = f"bilinear, saturation {sat:g}"
    if args.study == "upsample":
        s = np.float32(sat)
        arms: dict[str, Arm] = {shipped: bilinear(sat)}
        for radius, sigma_s, sigma_r in ((2, 1.0, 4.0), (2, 1.0, 8.0), (2, 1.0, 16.0), (3, 1.5, 8.0)):
            arms[f"joint bilateral r {radius}, sigma_s {sigma_s:g}, sigma_r {sigma_r:g}"] = (
                lambda p, a=(radius, sigma_s, sigma_r): ip.join_lightness_and_chroma(p.lightness, joint_bilateral_upsample(p.ab * s, p.lightness, p.lightness_small, *a))
            )  # fmt: skip
        arms["truth's chroma, bilinear (bound)"] = lambda p: ip.join_lightness_and_chroma(p.lightness, p.truth_ab_small)
        arms["truth's chroma, joint bilateral r 2, sigma_r 8 (bound)"] = lambda p: ip.join_lightness_and_chroma(
            p.lightness, joint_bilateral_upsample(p.truth_ab_small, p.lightness, p.lightness_small)
        )
        score_by_folder(photos, arms, shipped)
    elif args.study == "curves":
        arms = {f"saturation {v:g}": bilinear(v) for v in (0.9, 0.95, 1.0, 1.05, 1.1)}
        shipped = f"saturation {sat:g}"
        arms.setdefault(shipped, bilinear(sat))

        def chroma(p: Photo) -> np.ndarray:
            return np.sqrt((p.ab**2).sum(0, keepdims=True)) + 1e-6

        for k in (0.5, 1.0, 2.0, 3.0):
            for gain in (1.0, 1.05):
                arms[f"soft threshold {k:g} x {gain:g}"] = lambda p, k=k, g=gain: ip.join_lightness_and_chroma(
                    p.lightness, (p.ab * np.maximum(0, 1 - k / chroma(p)) * g).astype(np.float32))
        for k in (1.5, 3.0, 6.0):
            for gain in (1.0, 1.1):
                arms[f"ratio {k:g} x {gain:g}"] = lambda p, k=k, g=gain: ip.join_lightness_and_chroma(
                    p.lightness, (p.ab * chroma(p) / (chroma(p) + k) * g).astype(np.float32))
        for beta in (0.02, 0.05, 0.1):
            arms[f"Wiener {beta:g}"] = lambda p, b=beta: ip.join_lightness_and_chroma(
                p.lightness, (p.ab * chroma(p) ** 2 / (chroma(p) ** 2 + b * p.variance)).astype(np.float32))
        score_by_folder(photos, arms, shipped)
    else:
        if tests:
            groups = [(f"{args.model} on {', '.join(t.split('=')[0] for t in args.test)}", fit_photos, tests)]
        else:
            names = list(dict.fromkeys(p.folder for p in fit_photos))
            if len(names) < 2:
                parser.error("hue-gains without --test needs at least two --fit folders (each scored with the others' gains)")
            groups = [(f"{n}, gains fitted on the others", [p for p in fit_photos if p.folder != n],
                       [p for p in fit_photos if p.folder == n]) for n in names]  # fmt: skip
        for label, train, test in groups:
            gains = fit_hue_gains(train, args.sectors, args.photo_weighted, sat)
            print(f"\n{label}; gains by sector from a* > 0 anticlockwise: {np.round(gains, 2).tolist()}")
            arms = {shipped: bilinear(sat)}
            for v in (1.0, 1.05):
                arms[f"hue gains x {v:g}"] = lambda p, v=v, g=gains: ip.join_lightness_and_chroma(
                    p.lightness, apply_hue_gains(p.ab, g) * np.float32(v))
            score(test, arms, shipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
