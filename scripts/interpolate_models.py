"""Write a Colorizer whose weights lie on the line between two models of the same architecture.

A fine-tuned model drifts towards its fine-tuning photos; a weighted average of its weights and those of
the model it started from (Wortsman et al., *Robust fine-tuning of zero-shot models*, 2022) often keeps
much of the gain while giving back less on photos from elsewhere. ``--alpha`` is the share of the second
model: 0 copies ``start``, 1 copies ``end``, and above 1 it extrapolates, ``end`` plus ``alpha - 1``
times what the fine-tuning changed. The decoding settings (working size, saturation, temperature,
licence) are ``end``'s. Compare the result with ``scripts/evaluate_sources.py``:

    python scripts/interpolate_models.py runs/v06 runs/v07 runs/mix0.5 --alpha 0.5
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from agincolor import Colorizer


def interpolate(start: Colorizer, end: Colorizer, alpha: float) -> Colorizer:
    """``end`` with every floating-point tensor of its generator replaced by ``(1 - alpha) start + alpha end``.

    Raises ValueError when the two generators differ in configuration, so that no tensor is averaged
    with one of another role."""
    if start.generator_config != end.generator_config:
        differ = sorted(k for k in set(start.generator_config) | set(end.generator_config)
                        if start.generator_config.get(k) != end.generator_config.get(k))
        raise ValueError(f"the two models' generators differ in {', '.join(differ)}; only models of one architecture mix")
    first = start.generator.state_dict()
    with torch.no_grad():
        for name, tensor in end.generator.state_dict().items():
            if tensor.is_floating_point():
                tensor.lerp_(first[name].to(tensor), 1 - alpha)  # end + (1 - alpha) (start - end)
    return end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("start", help="Colorizer folder of the first model (alpha 0)")
    parser.add_argument("end", help="Colorizer folder of the second model (alpha 1), whose decoding settings are kept")
    parser.add_argument("out", type=Path, help="new folder for the mixed model (must not exist)")
    parser.add_argument("--alpha", type=float, required=True, help="share of the second model (above 1: extrapolate)")
    args = parser.parse_args(argv)
    if not math.isfinite(args.alpha):
        parser.error(f"--alpha must be a finite number, got {args.alpha}")
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    try:
        start = Colorizer.from_pretrained(args.start, local_files_only=True)
        end = Colorizer.from_pretrained(args.end, local_files_only=True)
        mixed = interpolate(start, end, args.alpha)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    mixed.save_pretrained(args.out)
    print(f"wrote {args.out}: {1 - args.alpha:g} x {args.start} + {args.alpha:g} x {args.end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
