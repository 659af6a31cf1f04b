"""Evaluate colorizers on several source folders, each and pooled, with the protocol of `agincolor evaluate`.

For choosing models on sources held out of training: one row per model and folder, plus a pooled row
over the folders named by ``--pooled`` (chroma recalls pooled over all their pixels, PSNR averaged over
all their photos). ``--limit N`` takes N photos spread evenly over each folder's sorted list (every k-th),
not its first N, so a folder sorted by class is still sampled across classes. ``--min-gray-psnr DB``
then keeps only the photos whose gray input already scores at least DB dB against the truth: the muted
ones (overcast streets, snow, faded photos), where a wrong colour costs more than the colour it restores.
``--mirror`` scores an ab-bins model with each pixel's bin distribution averaged over the photo and its
mirror image, the teacher of ``agincolor train --distill-flip``: what distilling it could pass on.
``--zoom Z`` runs the network on its working-size gray input enlarged Z times (bilinear), then brings each
pixel's bin distribution back to the working size: the photo's objects appear Z times larger, as in the
random-resized crops of training (``--scale-min``), at Z squared times the network's cost.
``--ensemble OTHER`` (repeatable) averages each pixel's bin distribution with OTHER's, an ab-bins model on
the same bin grid (the teachers of ``agincolor train --distill-from MODEL,OTHER``); it composes with
``--mirror`` (every model on both views) and ``--zoom``.
``--decoding ab-mean|srgb-mean`` (repeatable) sets how an ab-bins model's distribution becomes a colour
(``Colorizer.decoding``; default the model's own), so both can be compared in one run.
``--resample bilinear|bicubic|lanczos`` (repeatable) sets the filter that shrinks the gray input to the
working size (``Colorizer.resample``; default the model's own): the colours depend on the input's sharpness.
``--brightness lightness|luma`` (repeatable) sets what of the input's brightness the output keeps exactly
(``Colorizer.brightness``): its CIELAB lightness, or its BT.601 luma, the gray the protocol makes.

    python scripts/evaluate_sources.py --model src/agincolor/pretrained --model runs/x/colorizer \\
        --folder val=../shared/data/val/bsds500 --folder portraits=../shared/data/train/portraits \\
        --folder urban=../shared/data/train/urban --pooled portraits,urban --limit 300
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from agincolor import Colorizer
from agincolor.colorizer import DECODINGS
from agincolor.evaluate import _capped_psnr, _load_256, evaluate, list_images
from agincolor.image_processor import BRIGHTNESSES, RESAMPLINGS


def spread(files: list[Path], limit: int | None) -> list[Path]:
    if not limit or limit >= len(files):
        return files
    step = len(files) / limit
    return [files[int(i * step)] for i in range(limit)]


def load_colorizer(name: str, **kwargs) -> Colorizer:  # noqa: ANN003 (Colorizer.from_pretrained's options)
    """The Colorizer in folder (or Hub id) ``name``; ``"bundled"`` is the model shipped in the package."""
    return Colorizer.from_pretrained(None if name == "bundled" else name, **kwargs)


def parse_folders(items: list[str], limit: int | None, parser: argparse.ArgumentParser) -> dict[str, list[Path]]:
    """``NAME=DIR`` arguments as {NAME: DIR's photos, ``limit`` of them spread evenly}; a usage error otherwise."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"folders are NAME=DIR, got {item!r}")
        out[name] = spread(list_images(path), limit)
    return out


def gray_psnr(rgb: Image.Image) -> float:
    """PSNR of the protocol's gray input (PIL's ``convert("L")``) against the photo ``rgb`` itself."""
    return _capped_psnr(np.asarray(rgb.convert("L").convert("RGB")), np.asarray(rgb))


def muted(files: list[Path], min_gray_psnr: float) -> list[Path]:
    """The photos whose gray input (the protocol's: 256x256, PIL's ``convert("L")``) scores at least
    ``min_gray_psnr`` dB against the photo itself; unreadable files are left for ``evaluate`` to report."""
    kept = []
    for path in files:
        try:
            rgb = _load_256(path)
        except Exception:
            kept.append(path)
            continue
        if gray_psnr(rgb) >= min_gray_psnr:
            kept.append(path)
    return kept


class _BinView(torch.nn.Module):
    """An ab-bins generator seen another way: it stands in for ``generator`` in a Colorizer, and its bin
    scores are the log of a distribution that ``forward`` derives from the generator's."""

    def __init__(self, generator: torch.nn.Module) -> None:
        super().__init__()
        self.inner = generator
        self.in_channels = generator.in_channels
        self.head_kind = generator.head_kind

    @staticmethod
    def _as_scores(out, probs: torch.Tensor):  # noqa: ANN001, ANN205 (GeneratorOutput in and out)
        return out._replace(image=probs.clamp_min(1e-12).log())


class Mirrored(_BinView):
    """An ab-bins generator whose bin scores are the log of its distribution averaged over the photo and its
    mirror image (mirrored back): what a ``--distill-flip`` teacher gives its student, at twice the cost."""

    def forward(self, x: torch.Tensor):  # noqa: ANN201 (a GeneratorOutput)
        out = self.inner(x)
        mirrored = self.inner(x.flip(-1)).image.flip(-1)
        probs = (torch.softmax(out.image.float(), dim=1) + torch.softmax(mirrored.float(), dim=1)) / 2
        return self._as_scores(out, probs)


class Ensembled(_BinView):
    """Several ab-bins generators on one bin grid as one: its bin scores are the log of their mean distribution."""

    def __init__(self, generators: list[torch.nn.Module]) -> None:
        super().__init__(generators[0])
        self.members = torch.nn.ModuleList(generators)

    def forward(self, x: torch.Tensor):  # noqa: ANN201 (a GeneratorOutput)
        outs = [g(x) for g in self.members]
        probs = sum(torch.softmax(o.image.float(), dim=1) for o in outs) / len(outs)
        return self._as_scores(outs[0], probs)


class Zoomed(_BinView):
    """An ab-bins generator that sees its input enlarged ``zoom`` times (bilinear) and whose bin scores are the
    log of its distribution resized back (bilinear) to the input's size."""

    def __init__(self, generator: torch.nn.Module, zoom: float) -> None:
        super().__init__(generator)
        self.zoom = zoom

    def forward(self, x: torch.Tensor):  # noqa: ANN201 (a GeneratorOutput)
        h, w = x.shape[-2:]
        big = F.interpolate(x, size=(round(h * self.zoom), round(w * self.zoom)), mode="bilinear", align_corners=False)
        out = self.inner(big)
        probs = F.interpolate(torch.softmax(out.image.float(), dim=1), size=(h, w), mode="bilinear", align_corners=False)
        return self._as_scores(out, probs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="Colorizer folder, or 'bundled'")
    parser.add_argument("--folder", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--pooled", default="", help="comma-separated folder names to pool into one more row")
    parser.add_argument("--limit", type=int, default=None, help="photos per folder, spread evenly")
    parser.add_argument("--saturation", type=float, action="append", help="one or more saturations to try")
    parser.add_argument(
        "--temperature", type=float, action="append", help="for an ab-bins model: one or more annealed-mean temperatures"
    )
    parser.add_argument(
        "--min-gray-psnr",
        type=float,
        default=None,
        help="keep only photos whose gray input scores at least this many dB (the muted ones)",
    )
    parser.add_argument("--size", type=int, default=None, help="working size (default: the model's own)")
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="ab-bins models: average each pixel's bin distribution over the photo and its mirror image",
    )
    parser.add_argument(
        "--ensemble",
        action="append",
        default=[],
        metavar="OTHER",
        help="ab-bins models: average each pixel's bin distribution with this model's (same bin grid; repeatable)",
    )
    parser.add_argument(
        "--zoom",
        type=float,
        default=1.0,
        help="ab-bins models: run the network on its input enlarged this many times (>= 1), scores resized back",
    )
    parser.add_argument(
        "--decoding",
        action="append",
        choices=DECODINGS,
        help="ab-bins models: one or more decodings of the bin distribution (default: the model's own)",
    )
    parser.add_argument(
        "--resample",
        action="append",
        choices=tuple(RESAMPLINGS),
        help="one or more filters that resize the gray input to the working size (default: the model's own)",
    )
    parser.add_argument(
        "--brightness",
        action="append",
        choices=tuple(BRIGHTNESSES),
        help="what of the input's brightness the output keeps: lightness (CIELAB L*) or luma (BT.601); repeatable "
        "(default: the model's own)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write every result to this file")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.zoom) and args.zoom >= 1):
        parser.error(f"--zoom must be a number >= 1, got {args.zoom}")
    torch.set_num_threads(args.threads)
    folders = parse_folders(args.folder, args.limit, parser)
    if args.min_gray_psnr is not None:
        for name in folders:
            folders[name] = muted(folders[name], args.min_gray_psnr)
            if not folders[name]:
                parser.error(f"no photo of {name} has a gray input of at least {args.min_gray_psnr} dB")
    pooled = [p for p in args.pooled.split(",") if p]
    unknown = [p for p in pooled if p not in folders]
    if unknown:
        parser.error(f"--pooled names unknown folders: {', '.join(unknown)}")
    groups = dict(folders)
    if pooled:
        groups["pooled(" + "+".join(pooled) + ")"] = [f for p in pooled for f in folders[p]]
    results = []
    print("| model | saturation | T | folder | photos | PSNR | gray PSNR | vs gray | SSIM | colourfulness (truth) | green | blue |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for model in args.model:
        colorizer = load_colorizer(model)
        if args.size:
            colorizer.working_size = args.size
        if (args.mirror or args.zoom != 1 or args.decoding or args.ensemble) and colorizer.ab_bins is None:
            parser.error(f"--mirror, --zoom, --ensemble and --decoding act on bin distributions; {model} does not predict ab bins")
        if args.ensemble:
            others = [load_colorizer(o) for o in args.ensemble]
            for name, other in zip(args.ensemble, others):
                if other.ab_bins != colorizer.ab_bins:
                    parser.error(f"--ensemble {name} does not predict the bins of {model} ({colorizer.ab_bins})")
                if other.generator.in_channels != colorizer.generator.in_channels:
                    parser.error(f"--ensemble {name} takes {other.generator.in_channels} input channels, {model} {colorizer.generator.in_channels}")
            colorizer.generator = Ensembled([colorizer.generator, *(o.generator for o in others)])
        if args.zoom != 1:
            colorizer.generator = Zoomed(colorizer.generator, args.zoom)
        if args.mirror:
            colorizer.generator = Mirrored(colorizer.generator)
        tag = "".join(f" (+ {o})" for o in args.ensemble)
        tag += (" (mirrored)" if args.mirror else "") + (f" (zoom {args.zoom:g})" if args.zoom != 1 else "")
        temperatures = (args.temperature or [colorizer.temperature]) if colorizer.ab_bins is not None else [None]
        decodings = args.decoding or [colorizer.decoding]
        resamplings = args.resample or [colorizer.resample]
        brightnesses = args.brightness or [colorizer.brightness]
        settings = itertools.product(
            args.saturation or [colorizer.saturation], temperatures, decodings, resamplings, brightnesses
        )
        for saturation, temperature, decoding, resample, brightness in settings:
            colorizer.decoding = decoding
            colorizer.resample = resample
            colorizer.brightness = brightness
            shown = tag + (f" ({decoding})" if colorizer.ab_bins is not None else "")
            shown += f" ({resample})" if resample != "bilinear" else ""
            shown += f" ({brightness})" if brightness != "lightness" else ""
            # The pooled row sees the same photos again: colorize each only once.
            done: dict[bytes, object] = {}

            def run(images: list, saturation: float = saturation, temperature: float | None = temperature, done: dict = done) -> list:
                keys = [hashlib.md5(im.tobytes()).digest() for im in images]
                todo = [(k, im) for k, im in zip(keys, images) if k not in done]
                if todo:
                    batch = [im for _, im in todo]
                    for (k, _), out in zip(todo, colorizer.colorize(batch, saturation=saturation, temperature=temperature)):
                        done[k] = out
                return [done[k] for k in keys]

            for name, files in groups.items():
                r = evaluate(run, files).rows
                m, g, t = r["model"], r["gray baseline"], r["ground truth"]
                fmt = lambda v: "-" if v is None or math.isnan(v) else f"{v:.3f}"  # noqa: E731
                print(
                    f"| {model}{shown} | {saturation:.2f} | {'-' if temperature is None else f'{temperature:.2f}'} | {name} | {len(files)} | {m['psnr']:.2f} | {g['psnr']:.2f} | "
                    f"{m['psnr'] - g['psnr']:+.2f} | {m['ssim']:.4f} | {m['colorfulness']:.1f} ({t['colorfulness']:.1f}) | "
                    f"{fmt(m['green'])} | {fmt(m['blue'])} |",
                    flush=True,
                )
                results.append({"model": model, "ensemble": args.ensemble, "mirror": args.mirror, "zoom": args.zoom, "decoding": decoding, "resample": resample, "brightness": brightness, "saturation": saturation, "temperature": temperature, "folder": name, "photos": len(files), **r})
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=lambda v: None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
