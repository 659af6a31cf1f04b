"""Parameter counts and forward FLOPs of the generator and discriminator, as a markdown table.

Run from the repository root:

    PYTHONPATH=src python3 benchmarks/model_size.py

FLOPs are those of one forward pass at batch 1, counted by ``torch.utils.flop_counter.FlopCounterMode``:
convolutions and matrix products, two FLOPs per multiply-add; normalizations, activations, pooling and
padding are not counted. Discriminator rows cover both scales (local and global) together.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

try:
    from agincolor import Discriminator, Generator
except ImportError:  # running from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from agincolor import Discriminator, Generator


def _lite0() -> nn.Module:
    # The v0.4 default model's generator (recipes/lite0-ab.toml).
    return Generator(
        encoder="efficientnet_lite0", in_channels=1, out_channels=2, head="ab", base_channels=32, num_blocks=2, num_groups=8
    )


LITE0 = "efficientnet_lite0 + CAM + 2 AGIN blocks + U-Net, 32 base, 1 gray channel in, ab out"

# (model, configuration shown in the table, constructor, input size)
CASES: list[tuple[str, str, Callable[[], nn.Module], int]] = [
    ("Generator", "default: 64 base, 4 blocks, 32 groups", lambda: Generator(), 256),
    ("Generator", "small: 32 base, 4 blocks, 32 groups", lambda: Generator(base_channels=32, num_groups=32), 256),
    ("Generator", "small: 32 base, 4 blocks, 32 groups", lambda: Generator(base_channels=32, num_groups=32), 128),
    ("Generator", LITE0, _lite0, 256),
    ("Generator", LITE0, _lite0, 128),
    ("Discriminator", "default: 64 base, local 5 + global 7 layers, no cap", lambda: Discriminator(), 256),
    ("Discriminator", "64 base, local 5 + global 7 layers, max_channels=256", lambda: Discriminator(max_channels=256), 256),
]


def forward_flops(model: nn.Module, size: int) -> int:
    x = torch.zeros(1, getattr(model, "in_channels", 3), size, size)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops()


def main() -> None:
    torch.manual_seed(0)
    print("| Model | Configuration | Input | Parameters | Forward GFLOPs |")
    print("|---|---|---|---:|---:|")
    for name, config, build, size in CASES:
        model = build().eval()
        params = sum(p.numel() for p in model.parameters())
        flops = forward_flops(model, size)
        print(f"| {name} | {config} | {size}x{size} | {params / 1e6:.2f} M | {flops / 1e9:.1f} |")


if __name__ == "__main__":
    main()
