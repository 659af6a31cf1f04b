"""Write a Colorizer whose finest decoder stage is wider, computing exactly what the original computes.

The bundled model's last decoder stage (stride 1, full working resolution) has 16 channels, and its
1x1 output layer turns those 16 features into the scores of 484 ab bins: every pixel's distribution is
a log-linear family with at most 16 directions. Widening that stage ``--factor`` times gives the head
more to work with at little cost (the other stages are unchanged). The new network starts as a copy of
the old one (in the manner of Chen et al.'s Net2WiderNet, *Net2Net*, 2016):

* each of the stage's conv filters, and its norm's gamma, beta and rho, is repeated ``factor`` times,
  copy ``j`` of the new layer being channel ``j // factor`` of the old, so each GroupInstanceNorm group
  holds copies of the old group's channels only and its statistics do not change;
* each copy's weight in the output layer is the old weight over ``factor``, plus noise that sums to
  zero over the copies of one channel (copies carry equal activations, so the scores are unchanged),
  which gives the copies different gradients from the first step.

    python scripts/widen_model.py src/agincolor/pretrained runs/wide --factor 2
    agincolor train --config recipes/lite0-ab.toml --init-from runs/wide --decoder-channels 96,64,48,32,32 ...

The decoding settings and licence are the source's; the source must have a pretrained encoder (a U-Net
decoder) and a ``logits`` or ``ab`` output layer.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from agincolor import Colorizer
from agincolor.generator import Generator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_sources import load_colorizer  # noqa: E402


def default_decoder_channels(generator: Generator) -> tuple[int, ...]:
    """The widths of a U-Net generator's five decoder stages, read from its layers."""
    return tuple(block.body[-2].num_channels for block in generator.upsample)


def widen(source: Colorizer, factor: int, noise: float = 0.01, seed: int = 0) -> Colorizer:
    """A new Colorizer like ``source`` with its finest decoder stage ``factor`` times wider, same outputs.

    ``noise`` is the size of the zero-sum perturbation of the output layer's copies, relative to the
    largest absolute weight of that layer.
    """
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ValueError(f"factor must be an int >= 2, got {factor!r}")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    old = source.generator
    if old.encoder_name == "paper":
        raise ValueError("only a generator on a pretrained encoder (with a U-Net decoder) can be widened")
    if old.head_kind == "image":
        raise ValueError("only a 1x1 output layer ('logits' or 'ab' head) can be widened exactly")
    last = old.upsample[-1]
    if len(last.body) != 3:
        raise ValueError("the finest decoder stage must have one conv to be widened exactly")
    widths = list(default_decoder_channels(old))
    widths[-1] *= factor
    config = source.current_config()
    config["generator"] = {**config["generator"], "decoder_channels": widths}
    wide = Colorizer(**config)
    state = {k: v.clone() for k, v in old.state_dict().items()}
    prefix = f"upsample.{len(old.upsample) - 1}.body"
    copies = torch.arange(widths[-1]) // factor  # new channel j is old channel j // factor
    conv = state[f"{prefix}.0.1.weight"]
    state[f"{prefix}.0.1.weight"] = conv[copies]
    for name in ("gamma", "beta", "rho"):
        key = f"{prefix}.1.{name}"
        if key in state:
            state[key] = state[key][:, copies]
    head = state["head.0.weight"]  # (out, C, 1, 1)
    split = head[:, copies] / factor
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(split.shape, generator=g, dtype=torch.float64)
    z = z.view(head.shape[0], -1, factor, 1, 1)
    z = (z - z.mean(dim=2, keepdim=True)).view(split.shape)
    scale = noise * head.abs().max().double()
    state["head.0.weight"] = (split.double() + scale * z).to(head.dtype)
    missing, unexpected = wide.generator.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"widened weights do not fit: missing {missing}, unexpected {unexpected}")
    return wide.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="Colorizer folder (or 'bundled')")
    parser.add_argument("out", type=Path, help="new folder for the widened model (must not exist)")
    parser.add_argument("--factor", type=int, default=2, help="how many times wider the finest stage becomes")
    parser.add_argument("--noise", type=float, default=0.01, help="zero-sum perturbation of the copies' output weights")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    try:
        source = load_colorizer(args.source, local_files_only=True)
        wide = widen(source, args.factor, args.noise, args.seed)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    wide.save_pretrained(args.out)
    widths = ",".join(map(str, wide.generator_config["decoder_channels"]))
    print(f"wrote {args.out}: decoder widths {widths} (train it with --decoder-channels {widths})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
