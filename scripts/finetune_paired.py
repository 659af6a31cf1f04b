"""Supervised fine-tuning of a Colorizer's generator against the evaluation's own error (CPU friendly).

The loss is ``agincolor.train.losses.paired_loss`` in its chroma form, measured the way the Colorizer
is used: the generator's output is reduced to its CIELAB ab, joined with the target's own L, converted
back to sRGB and compared with the target (mean squared error, the quantity PSNR measures; or absolute
error with ``--loss chroma-l1``). No discriminator is built, so a step costs one generator forward and
backward: about 9 images/s at 128x128 in bf16 on two CPU cores, against under 1 image/s for the full
adversarial objective. ``agincolor train --adv-weight 0 --paired-loss chroma-l2`` runs the same
objective inside the full trainer (with checkpoints and resume); this script adds timed snapshots for
a learning curve and keeps only what a warm start needs.

    python scripts/finetune_paired.py --init src/agincolor/pretrained --data data/train128 \
        --out runs/ft --time-budget 6000 --amp

Writes ``log.jsonl`` (mean loss per logging window) and a Colorizer folder ``snapshot-<seconds>s`` every
``--export-every`` seconds plus ``final`` at the end; nothing is overwritten.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from agincolor import Colorizer
from agincolor.train.data import ImageFolder, StepBatchSampler, collate
from agincolor.train.losses import paired_loss
from agincolor.train.trainer import export_generator, to_gray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--init", required=True, help="Colorizer folder to start from")
    parser.add_argument("--data", required=True, help="folder of colour training photos")
    parser.add_argument("--out", required=True, help="new run folder (must not exist)")
    parser.add_argument("--time-budget", type=float, required=True, help="seconds of training")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="images are resized to this square size")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--decay-start", type=float, default=0.5, help="fraction of the budget before linear decay")
    parser.add_argument("--loss", choices=("chroma-l2", "chroma-l1"), default="chroma-l2")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--export-every", type=float, default=900.0, help="seconds between snapshots")
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=0, help="data-loading worker processes")
    args = parser.parse_args()

    out = Path(args.out)
    if out.exists():
        parser.error(f"--out {out} exists; choose a new folder")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    device = torch.device(args.device)
    start = Colorizer.from_pretrained(args.init)
    generator = start.generator.float().to(device).train()
    kwargs = dict(start.generator_config)
    working_size = start.working_size

    data = ImageFolder(args.data, load_size=args.size, crop_size=args.size, flip=True)
    sampler = StepBatchSampler(len(data), args.batch_size, args.seed)
    loader = DataLoader(data, batch_sampler=sampler, collate_fn=collate, num_workers=args.workers)
    opt = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.9, 0.999))

    out.mkdir(parents=True)
    (out / "args.json").write_text(json.dumps(vars(args), indent=2))
    log = (out / "log.jsonl").open("a")
    begin = time.perf_counter()
    next_export = args.export_every
    window: list[float] = []
    images = 0
    for step, (color, _) in enumerate(loader):
        elapsed = time.perf_counter() - begin
        if elapsed >= args.time_budget:
            break
        frac = elapsed / args.time_budget
        factor = 1.0 if frac < args.decay_start else (1.0 - frac) / (1.0 - args.decay_start)
        for group in opt.param_groups:
            group["lr"] = args.lr * factor
        color = color.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            result = generator(to_gray(color))
        loss = paired_loss(result.image, color, args.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(float(loss.detach()))
        images += color.shape[0]
        if (step + 1) % args.log_every == 0:
            record = {"step": step + 1, "images": images, "time": round(elapsed, 1), "lr": args.lr * factor}
            record["loss"] = sum(window) / len(window)
            log.write(json.dumps(record) + "\n")
            log.flush()
            window.clear()
        if elapsed >= next_export:
            export_generator(generator, out / f"snapshot-{int(elapsed):06d}s", kwargs, working_size)
            next_export += args.export_every
    export_generator(generator, out / "final", kwargs, working_size)
    log.close()
    print(f"{images} images in {time.perf_counter() - begin:.0f} s -> {out / 'final'}")


if __name__ == "__main__":
    main()
