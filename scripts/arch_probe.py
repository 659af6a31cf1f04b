"""Is it the network or the data? Train a colorizer from scratch for a fixed time and probe where it puts green.

    OMP_NUM_THREADS=1 python scripts/arch_probe.py --arch paper --data data/train128 --out runs/probe_paper
    OMP_NUM_THREADS=1 python scripts/arch_probe.py --arch unet --data data/train128 --out runs/probe_unet
    OMP_NUM_THREADS=1 python scripts/arch_probe.py --arch unet --holdout 400 --only landscape ...

Both networks get the same recipe as the encoder-norm runs of ``docs/ablations.md``: supervised only, the
``chroma-l2`` paired loss with rarity weights (``--rebalance 0.5``'s formula, the colour prior from 2,000
training photos), whole photos at 64 px with horizontal flips, batch 32, Adam 2e-4 (betas 0.9, 0.999)
constant for half the time and then decaying linearly to zero, bf16 autocast, a moving average of the
weights (decay ramped to 0.999), seed 0, and a wall-clock budget instead of a step count. The photos of
``--data`` are held in memory at 64 px (9,020 photos take 110 MB), cached beside ``--out`` for the next run.

``--arch paper`` is :class:`agincolor.Generator` as the bundled model has it (32 base channels, 4 + 4
blocks, 8 groups, rho 0.1, CAM). ``--arch unet`` is a plain U-Net written here for comparison only: four
levels of two 3x3 conv + batch norm + ReLU (32 to 256 channels), max-pool down, bilinear up with skip
connections, a 1x1 conv and tanh (3.1M parameters). It has none of the paper's parts (no instance or
group-instance norm, no CAM, no AGIN) and everything a segmentation network would use to tell regions apart.

Every ``--eval-every`` seconds and at the end, the averaged network is probed as ``scripts/hue_probe.py``
probes a Colorizer: the first 200 photos of ``--val`` cut to 128x128, the gray input at 64 px, the
predicted ab upsampled to 128, and the ROC AUC of minus a* (green) and minus b* (blue) for the truly
green and blue pixels. At the end it also probes the first 200 training landscapes and, with
``--holdout N``, the first 200 of the last N landscapes, which are then left out of training. Those are
read from ``--originals`` (the full-size training photos), as the validation photos are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hue_probe import hue_aucs  # noqa: E402

from agincolor import Generator, clip_rho_  # noqa: E402
from agincolor.color import rgb_to_gray, rgb_to_lab  # noqa: E402
from agincolor.evaluate import list_images  # noqa: E402
from agincolor.train import losses as L  # noqa: E402

SIZE = 64  # training and working size
PROBE_SIZE = 128  # side the probed photos are cut to, as in hue_probe.py
PROBE_PHOTOS = 200


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """The plain U-Net described in the module docstring: gray (N, 3, H, W) in [-1, 1] to RGB in [-1, 1]."""

    def __init__(self, base: int = 32) -> None:
        super().__init__()
        ch = [base, 2 * base, 4 * base, 8 * base]
        self.down = nn.ModuleList(_double_conv(cin, cout) for cin, cout in zip([3, *ch[:-1]], ch))
        self.middle = _double_conv(ch[3], ch[3])
        self.up = nn.ModuleList(_double_conv(ch[i + 1] + ch[i], ch[i]) for i in (2, 1, 0))
        self.head = nn.Conv2d(ch[0], 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = self.middle(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return torch.tanh(self.head(x))


class PaperGenerator(nn.Module):
    """:class:`agincolor.Generator` as the bundled model is configured, returning only its image."""

    def __init__(self) -> None:
        super().__init__()
        self.g = Generator(base_channels=32, num_blocks=4, num_groups=8, rho_init=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(x).image


ARCHS = {"paper": PaperGenerator, "unet": UNet}


def load_photos(paths: list[Path], cache: Path) -> torch.Tensor:
    """(N, 3, 64, 64) uint8 of every photo, cached in ``cache`` (safetensors)."""
    if cache.exists():
        photos = load_file(cache)["photos"]
        if len(photos) == len(paths):
            return photos
    array = np.stack([np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)) for p in paths])
    photos = torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file({"photos": photos}, str(cache))
    return photos


@torch.no_grad()
def probe(net: nn.Module, photos: list[Path]) -> dict[str, float]:
    """Green and blue AUCs of ``net`` on the first 200 ``photos`` (see the module docstring)."""

    def colorize(photo: Image.Image) -> torch.Tensor:  # ab from the gray photo at 64 px, upsampled; L* unused
        gray = np.asarray(photo.convert("L").resize((SIZE, SIZE), Image.BICUBIC), dtype=np.float32) / 255
        out = net(torch.from_numpy(gray)[None, None].expand(1, 3, -1, -1) * 2 - 1)
        ab = rgb_to_lab(((out.float() + 1) / 2).clamp(0, 1))[:, 1:]
        ab = F.interpolate(ab, size=(PROBE_SIZE, PROBE_SIZE), mode="bilinear", align_corners=False)[0]
        return torch.cat([torch.zeros(1, PROBE_SIZE, PROBE_SIZE), ab])

    net.eval()
    aucs = hue_aucs(colorize, photos[:PROBE_PHOTOS], PROBE_SIZE)
    net.train()
    return {hue: round(auc, 3) for hue, auc in aucs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, choices=sorted(ARCHS))
    parser.add_argument("--data", default="data/train128", help="training photos (subfolders landscape/...)")
    parser.add_argument("--originals", default="../shared/data/train", help="the same photos at full size")
    parser.add_argument("--val", default="../shared/data/val/bsds500", help="validation photos to probe")
    parser.add_argument("--out", required=True, help="folder for log.jsonl, probes.jsonl, ema.safetensors")
    parser.add_argument("--seconds", type=float, default=3000, help="wall-clock training budget")
    parser.add_argument("--eval-every", type=float, default=1000, help="seconds between validation probes")
    parser.add_argument("--holdout", type=int, default=0, help="leave the last N landscapes out and probe them")
    parser.add_argument("--only", default=None, help="train on this subfolder (e.g. landscape) only")
    parser.add_argument(
        "--prior-sample",
        choices=("random", "first"),
        default="random",
        help="photos the colour prior is estimated from: 2,000 at random, or the first 2,000 in file order",
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(args.data)
    paths = list_images(data_root)
    key = hashlib.sha1(str(data_root.resolve()).encode()).hexdigest()[:8]
    photos = load_photos(paths, out.parent / f".arch_probe_cache_{key}_{len(paths)}.safetensors")
    landscapes = [i for i, p in enumerate(paths) if p.parent.name == "landscape"]
    if not 0 <= args.holdout <= len(landscapes):
        parser.error(f"--holdout must lie between 0 and the {len(landscapes)} landscapes under {data_root}")
    held = set(landscapes[len(landscapes) - args.holdout :]) if args.holdout else set()
    keep = [i for i, p in enumerate(paths) if i not in held and (args.only is None or p.parent.name == args.only)]
    if not keep:
        parser.error(f"no training photos left under {data_root} (--only {args.only!r}, --holdout {args.holdout})")
    heldout = [Path(args.originals) / paths[i].relative_to(data_root) for i in sorted(held)]
    train_landscapes = [Path(args.originals) / paths[i].relative_to(data_root) for i in landscapes if i not in held]
    val = list_images(args.val)
    photos = photos[keep]
    print(f"{len(photos)} training photos, {len(heldout)} held out", flush=True)

    net, average = ARCHS[args.arch](), ARCHS[args.arch]()
    average.load_state_dict(net.state_dict())
    average.requires_grad_(False)
    print(f"{args.arch}: {sum(p.numel() for p in net.parameters()):,} parameters", flush=True)
    if args.prior_sample == "first":
        sample = photos[:2000]
    else:
        sample = photos[torch.randperm(len(photos), generator=torch.Generator().manual_seed(1))[:2000]]
    batches = [sample[i : i + 500].float() / 127.5 - 1 for i in range(0, len(sample), 500)]
    rebalance = L.ChromaRebalance.from_images(batches, power=0.5)
    lr, batch = 2e-4, 32
    opt = torch.optim.Adam(net.parameters(), lr, betas=(0.9, 0.999))

    start, step, next_probe = time.time(), 0, args.eval_every
    with open(out / "log.jsonl", "a") as log, open(out / "probes.jsonl", "a") as probes:
        while (elapsed := time.time() - start) < args.seconds:
            fraction = elapsed / args.seconds
            for group in opt.param_groups:
                group["lr"] = lr * min(1.0, 2 * (1 - fraction))
            target = photos[torch.randint(0, len(photos), (batch,))].float() / 255
            flip = torch.rand(batch) < 0.5
            target[flip] = target[flip].flip(-1)
            gray = (rgb_to_gray(target) * 2 - 1).expand(-1, 3, -1, -1)
            target = target * 2 - 1
            with torch.autocast("cpu", dtype=torch.bfloat16):
                fake = net(gray)
            loss = L.paired_loss(fake.float(), target, "chroma-l2", pixel_weights=rebalance(target))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clip_rho_(net)
            step += 1
            decay = min(0.999, (1 + step) / (10 + step))
            with torch.no_grad():
                for avg, cur in zip(average.state_dict().values(), net.state_dict().values()):
                    if avg.dtype.is_floating_point:
                        avg.lerp_(cur, 1 - decay)
                    else:
                        avg.copy_(cur)
            if step % 50 == 0:
                log.write(json.dumps({"step": step, "seconds": round(elapsed), "loss": loss.item()}) + "\n")
                log.flush()
            final = time.time() - start >= args.seconds
            if time.time() - start > next_probe or final:
                next_probe += args.eval_every
                record = {"step": step, "seconds": round(time.time() - start), "val": probe(average, val)}
                if heldout:
                    record["heldout_landscapes"] = probe(average, heldout)
                if final:
                    record["train_landscapes"] = probe(average, train_landscapes)
                print(json.dumps(record), flush=True)
                probes.write(json.dumps(record) + "\n")
                probes.flush()
    save_file({k: v.contiguous() for k, v in average.state_dict().items()}, str(out / "ema.safetensors"))


if __name__ == "__main__":
    main()
