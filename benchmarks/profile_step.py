"""Where the time of one supervised training step goes, and how many images per second it trains.

The step is the trainer's own (``Trainer.train_step``) for the default model's objective: the paired term
in its ``chroma-l2`` form with colour-rarity weights, no discriminator (``--paired-loss ab-bins``: the
484-bin classification form instead, with its 1x1 output layer). Prints the median images per
second over timed steps (after warm-up) and the operators that take most time under torch.profiler
(self time on the device: CUDA kernels on a GPU, CPU time on a CPU), grouped by operator name.

    python benchmarks/profile_step.py --device cuda --base-channels 48 --batch-size 64 --amp --channels-last
    python benchmarks/profile_step.py --device cpu --batch-size 4 --iters 3      # a quick run on a CPU
    python benchmarks/profile_step.py --device cpu --batch-size 4 --iters 3 --paired-loss ab-bins

Inputs are random images (the data loader is not part of the step); the colour prior for the rarity
weights comes from a few random images too, so its weights, not its cost, differ from a real run's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _make_data(folder: Path, size: int, count: int = 4) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8")).save(folder / f"{i}.png")


def main() -> None:
    from agincolor.train.losses import PAIRED_LOSSES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--num-groups", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="training image side")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--iters", type=int, default=20, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--pooling", default="avg,median", help="CAM pooling, as for agincolor train")
    parser.add_argument("--top", type=int, default=15, help="operators listed")
    parser.add_argument("--paired-loss", default="chroma-l2", choices=PAIRED_LOSSES)
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from agincolor.train import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        _make_data(data, args.size)
        cfg = TrainConfig(
            data=str(data), out=str(Path(tmp) / "out"), load_size=args.size, crop_size=args.size,
            batch_size=args.batch_size, base_channels=args.base_channels, num_groups=args.num_groups,
            pooling=tuple(args.pooling.split(",")), adv_weight=0.0, cycle_weight=0.0, content_weight=0.0,
            cam_weight=0.0, paired_weight=1.0, paired_loss=args.paired_loss, rebalance=0.5, rebalance_images=4,
            device=args.device, amp=args.amp, channels_last=args.channels_last, workers=0,
        )
        trainer = Trainer(cfg, progress=False)
        device = trainer.device
        cuda = device.type == "cuda"

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize(device)

        color = (torch.rand(args.batch_size, 3, args.size, args.size) * 2 - 1).to(device)
        for _ in range(args.warmup):
            trainer.train_step(color)
        sync()
        times = []
        for _ in range(args.iters):
            start = time.perf_counter()
            trainer.train_step(color)
            sync()
            times.append(time.perf_counter() - start)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            for _ in range(3):
                trainer.train_step(color)
            sync()

    params = sum(p.numel() for p in trainer.G_g.parameters())
    median = statistics.median(times)
    print(
        f"device {device}, generator {args.base_channels} base channels ({params / 1e6:.1f}M parameters), "
        f"batch {args.batch_size} at {args.size}px, amp {args.amp}, channels-last {args.channels_last}, "
        f"pooling {args.pooling}, paired loss {args.paired_loss}"
    )
    print(f"median step {median * 1000:.1f} ms over {args.iters} steps: {args.batch_size / median:.0f} images/s")
    sort_by = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(f"operators by {sort_by} (3 profiled steps):")
    print(prof.key_averages().table(sort_by=sort_by, row_limit=args.top))


if __name__ == "__main__":
    main()
