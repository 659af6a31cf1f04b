"""Write a Colorizer whose AGIN style path (the light MLP that gives the bottleneck blocks their gamma and
beta) is alive again, computing almost exactly what the original computes.

In the pretrained-encoder generator, the spatial mean of the CAM-weighted bottleneck features goes
through two bias-free Linear + ReLU layers (``mlp``) and then two Linear layers (``to_gamma``,
``to_beta``) to the per-sample gamma and beta of every AGIN in the ``decoder_blocks``. If the first
layer's units stop firing, that path carries no gradient, gamma stays near zero, and with it each block's
residual branch: the blocks then hardly change the features and their convs hardly learn (see
``--report``). Rescaling cannot revive a ReLU that never fires, so this script draws the two MLP layers
anew (He-normal, so about half their units fire) and draws ``to_gamma`` and ``to_beta`` anew at a size
that keeps gamma and beta at the root mean square they had on the calibration photos (at least
``--floor``: with gamma and beta both zero, every block's first ReLU sits at zero and passes no gradient):
the blocks' branches start as small as before, and the model's colours barely move, but gamma and beta
can now grow where the loss wants them to.

    python scripts/revive_style.py src/agincolor/pretrained runs/revived --data ../shared/data/train
    agincolor train --config recipes/lite0-ab.toml --init-from runs/revived ...

The decoding settings and licence are the source's; the source must have a pretrained encoder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from agincolor import Colorizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_sources import list_images, load_colorizer, spread  # noqa: E402


def calibration_batch(folder: str, limit: int, size: int) -> torch.Tensor:
    """``limit`` photos of ``folder`` (spread evenly over its sorted list), gray, ``size`` square, in [-1, 1]."""
    files = spread(list_images(folder), limit)  # list_images refuses a folder with none
    batch = []
    for path in files:
        with Image.open(path) as im:
            gray = im.convert("L").resize((size, size), Image.Resampling.BICUBIC)
        batch.append(torch.from_numpy(np.asarray(gray, dtype=np.float32) / 127.5 - 1.0)[None])
    return torch.stack(batch)


@torch.no_grad()
def style_stats(generator: torch.nn.Module, gray: torch.Tensor) -> dict[str, float]:
    """Root mean squares along the style path, the share of first-layer activations that fire, and how much
    the bottleneck blocks change the features (rms of the change over rms of their input). The values are
    read by forward hooks from one ordinary forward pass of the generator."""
    if generator.encoder_name == "paper" or generator.in_channels != 1:
        raise ValueError("only a one-channel generator on a pretrained encoder is supported")
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):  # noqa: ANN202 (a forward hook)
        def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            seen[name] = output

        return hook

    def keep_input(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        seen["before"] = inputs[0]

    handles = [
        generator.mlp[1].register_forward_hook(keep("hidden")),
        generator.mlp.register_forward_hook(keep("style")),
        generator.to_gamma.register_forward_hook(keep("gamma")),
        generator.to_beta.register_forward_hook(keep("beta")),
        generator.decoder_blocks[0].register_forward_pre_hook(keep_input),
        generator.decoder_blocks[-1].register_forward_hook(keep("after")),
    ]
    try:
        generator(gray)
    finally:
        for handle in handles:
            handle.remove()

    def rms(t: torch.Tensor) -> float:
        return float(t.pow(2).mean().sqrt())

    return {
        "hidden_rms": rms(seen["hidden"]),
        "hidden_firing": float((seen["hidden"] > 0).float().mean()),
        "style_rms": rms(seen["style"]),
        "gamma_rms": rms(seen["gamma"]),
        "beta_rms": rms(seen["beta"]),
        "block_change": rms(seen["after"] - seen["before"]) / max(rms(seen["before"]), 1e-12),
    }


def revive(source: Colorizer, gray: torch.Tensor, seed: int = 0, floor: float = 1e-3) -> Colorizer:
    """A copy of ``source`` with a freshly drawn style MLP and gamma/beta layers scaled to the old gamma and
    beta's root mean square on ``gray``, or to ``floor`` where that is smaller."""
    if not floor > 0:
        raise ValueError(f"floor must be > 0, got {floor!r}")
    old = source.generator.eval()
    target = style_stats(old, gray)
    revived = Colorizer(**source.current_config())
    new = revived.generator
    new.load_state_dict(old.state_dict())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (new.mlp[0], new.mlp[2]):
            fan_in = layer.weight.shape[1]
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
        for layer in (new.to_gamma, new.to_beta):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
        new.eval()
        drawn = style_stats(new, gray)
        for layer, key in ((new.to_gamma, "gamma_rms"), (new.to_beta, "beta_rms")):
            if drawn[key] > 0:
                layer.weight.mul_(max(target[key], floor) / drawn[key])
    return revived.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="Colorizer folder (or 'bundled')")
    parser.add_argument("out", type=Path, nargs="?", help="new folder for the revived model (must not exist)")
    parser.add_argument("--data", required=True, help="folder of calibration photos (searched recursively)")
    parser.add_argument("--limit", type=int, default=256, help="calibration photos, spread over the folder")
    parser.add_argument("--size", type=int, default=128, help="calibration size (the training crop)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--floor", type=float, default=1e-3, help="least root mean square of gamma and beta")
    parser.add_argument("--report", action="store_true", help="print the source's style statistics and stop")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    if args.size < 32:
        parser.error(f"--size must be at least 32 (the generator's smallest input), got {args.size}")
    if not args.report and args.out is None:
        parser.error("give an output folder, or --report")
    if args.out is not None and args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    try:
        source = load_colorizer(args.source, local_files_only=True)
        gray = calibration_batch(args.data, args.limit, args.size)
        print("source:", " ".join(f"{k} {v:.4g}" for k, v in style_stats(source.generator.eval(), gray).items()))
        if args.report:
            return 0
        revived = revive(source, gray, args.seed, args.floor)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    print("revived:", " ".join(f"{k} {v:.4g}" for k, v in style_stats(revived.generator, gray).items()))
    revived.save_pretrained(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
