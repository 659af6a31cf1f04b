"""Command-line front end of the trainer, shared by ``agincolor train`` and ``examples/train_cyclegan.py``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ..encoders import ENCODERS
from ..generator import ENCODER_NORMS
from .config import TrainConfig
from .losses import PAIRED_LOSSES

__all__ = ["build_parser", "config_from_args", "load_recipe", "load_size_for", "parse_args", "main"]

_HELP = {
    "data": "folder of colour photos (searched recursively for jpg, png, webp, bmp)",
    "out": "run folder: log.jsonl, samples/, checkpoint.pt, colorizer/",
    "gray_data": "optional second folder for the gray domain (unpaired); default: luminance of --data images",
    "exclude": "sub-folders of --data to leave out (sources held out of training), comma separated",
    "load_size": "images are resized to this square size before cropping (paper: 286)",
    "crop_size": "random crop size, the training resolution (paper: 256)",
    "flip": "random horizontal flips",
    "scale_min": "below 1: random-resized crops covering at least this share of the resized image's area, "
    "resized to --crop-size",
    "gray_jitter": "above 0: redraw each gray input's gamma and contrast every step, up to a factor e^S and "
    "e^(S/2) either way (the colour targets are left as they are)",
    "gray_sharpness": "above 0: blur or sharpen each gray input every step, from a 1-pixel Gaussian blur (S 1) to "
    "an unsharp mask of amount S (the colour targets are left as they are)",
    "cut_mix": "above 0: paste into each photo, with this probability, a rectangle (10 to 50%% of its area) of "
    "another photo of the batch at the same place, before its gray input is made",
    "source_power": "draw each photo's source (top-level sub-folder of --data) with probability proportional to its "
    "photo count to this power: 1 every photo alike (default), 0 every source alike",
    "batch_size": "images per step per process (paper: 1)",
    "steps": "training steps",
    "decay_start": "fraction of the run after which the learning rate decays linearly to zero",
    "warmup_steps": "ramp the learning rate linearly from 1/N of it over the first N steps (0: none), "
    "for runs warm-started from trained weights with a fresh optimizer",
    "lr": "Adam learning rate (paper: 2e-4)",
    "beta1": "Adam beta1 (paper: 0.5)",
    "beta2": "Adam beta2 (paper: 0.999)",
    "weight_decay": "Adam weight decay on the weights of convolutions and linear layers (an L2 term added to the "
    "gradient, unless --decoupled-weight-decay); biases, normalisation scales and shifts, rho and CAM's one-output "
    "classifier weights are left alone unless --weight-decay-all",
    "decoupled_weight_decay": "decay the weights directly, by lr times --weight-decay each step, outside Adam's "
    "normalisation (AdamW, Loshchilov and Hutter)",
    "weight_decay_all": "apply --weight-decay to every trained parameter, the per-channel ones (biases, "
    "normalisation scales and shifts, rho, CAM's classifier weights) too",
    "ema": "decay of an exponential moving average of G_g's weights, updated every step (e.g. 0.999; 0 off); "
    "exports, snapshots and samples use the average",
    "adv_weight": "lambda_1, adversarial terms (eqs. 4, 8); 0 builds no discriminator (needs --paired-weight)",
    "cycle_weight": "lambda_2, cycle L1 (eq. 5); 0 drops G_c and D_g entirely",
    "content_weight": "lambda_3, content (identity) L1 (eq. 6)",
    "cam_weight": "lambda_4, generator CAM cross-entropy (eq. 7)",
    "paired_weight": "paired error of G_g(gray(y)) against y; > 0 pairs each gray image with its colour original",
    "paired_loss": "form of the paired error: rgb-l1 (image L1), chroma-l1 or chroma-l2 (output's ab on y's "
    "lightness, as the Colorizer uses it; l2 is what PSNR measures), ab-bins (colour as classification over "
    "484 CIELAB ab bins, Zhang et al. 2016: G_g predicts per-pixel bin scores, decoded by an annealed mean), or "
    "ab-huber / ab-l2 (G_g predicts CIELAB ab directly, head 'ab'); the last three need --cycle-weight 0 "
    "--content-weight 0 (--adv-weight shows D_c their ab on the photo's lightness)",
    "rebalance": "weight each pixel of the paired term by the rarity of its true colour to this power "
    "(Zhang et al. 2016; 1 is theirs, 0.5 gentler, 0 off), against the drift to brown",
    "rebalance_images": "training photos that estimate the colour prior for --rebalance",
    "bins_stride": "ab-bins only: score every k-th pixel each way (random offset each step), k^2 times less "
    "work in the 484-bin output layer and its cross-entropy (and, with --adv-weight, D_c judges the photos so "
    "decimated)",
    "bins_mean_weight": "ab-bins only: add this many times the squared error of the predicted distribution's mean "
    "(the colour a temperature-1 Colorizer shows, in units of 110 CIELAB) to the cross-entropy; 0 off",
    "bins_soft_sigma": "ab-bins only: soft targets, the 3x3 bins around each pixel's true colour weighted by a "
    "Gaussian of this many CIELAB units (Zhang et al. use 5); 0: its one bin",
    "bins_decibel_weight": "ab-bins only: add this many times the photos' mean chroma error in decibels, "
    "10 log10(1 + mean squared ab error of the distribution's mean), the log scale PSNR averages: halving "
    "a photo's error gains as much whether it was small or large, so photos with little colour to get "
    "wrong count as much as vivid ones; 0 off",
    "distill_from": "ab-bins only: teacher Colorizer folders (ab-bins models on the same grid), comma separated; "
    "adds --distill-weight times the KL divergence from their mean bin distribution to G_g's (knowledge "
    "distillation)",
    "distill_weight": "weight of the distillation term of --distill-from",
    "distill_flip": "each teacher also sees the mirrored photo; its distribution, mirrored back, is averaged in",
    "base_channels": "generator stem width (bottleneck is 4x)",
    "num_blocks": "residual blocks in encoder and decoder",
    "num_groups": "group-norm groups in AGIN and GroupInstanceNorm",
    "pooling": "CAM poolings, comma separated: avg, max, median",
    "use_cam": "use the CAM auxiliary classifier (off: the CAM ablation)",
    "rho_init": "initial rho of every AGIN (weight of group norm)",
    "upsample_rho_init": "initial rho of the upsampling GroupInstanceNorms",
    "learn_rho": "learn rho (off: keep it fixed at its initial value, for the GN-only/IN-only ablations)",
    "encoder_norm": "generator encoder normalization: in (the paper's instance norm), bn (batch norm) or gn "
    "(group norm, --num-groups groups)",
    "encoder": "generator encoder: paper (the paper's, from scratch), efficientnet_lite0 (ImageNet-pretrained "
    "EfficientNet-Lite0 under the paper's CAM and AGIN, with a U-Net decoder) or efficientnet_lite1 (the same "
    "on the deeper EfficientNet-Lite1; scripts/deepen_encoder.py grows a Lite0 model into one)",
    "pretrained_encoder": "start a pretrained-capable encoder from its ImageNet weights (off: from scratch)",
    "encoder_lr": "learning rate of a pretrained encoder (default: --lr / 10)",
    "in_channels": "G_g's gray input channels: 3 equal ones (the paper's X_g) or 1; 1 needs --content-weight 0 "
    "--cam-weight 0 --cycle-weight 0",
    "decoder_channels": "U-Net decoder widths at strides 16, 8, 4, 2, 1 for a pretrained encoder, comma separated "
    "(default: 3, 2, 1.5, 1, 0.5 x --base-channels)",
    "d_base_channels": "discriminator first-layer width",
    "d_local_layers": "convs of the local PatchGAN (5 gives 70x70)",
    "d_global_layers": "convs of the global PatchGAN (7 gives 286x286)",
    "d_max_channels": "cap on discriminator widths (default: none, as U-GAT-IT)",
    "seed": "random seed (data order, crops, initial weights)",
    "device": "auto, cpu, cuda or cuda:N",
    "amp": "bfloat16 autocast",
    "channels_last": "channels-last memory format",
    "workers": "data-loading worker processes",
    "log_every": "steps between log.jsonl records",
    "sample_every": "steps between sample grids",
    "checkpoint_every": "steps between checkpoints",
    "time_budget": "also stop after this many seconds of training; the decay then follows elapsed time",
    "snapshot_every": "also export G_g every this many seconds of training to OUT/snapshots/<seconds>s-step<step>",
    "init_from": "warm-start G_g from a Colorizer folder (config.json + model.safetensors); an ab-bins run "
    "from an image model starts its new output layer at that model's colours",
    "export_working_size": "working resolution written into the exported Colorizer (default: crop size)",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


#: The paper resizes to 286 before cropping 256 (section 4.2); --image-size N keeps that ratio.
PAPER_LOAD_RATIO = 286 / 256


def load_size_for(image_size: int) -> int:
    """The load size that ``--image-size N`` implies: N scaled as the paper's 286 is to 256."""
    return int(round(image_size * PAPER_LOAD_RATIO))


class _StoreGiven(argparse.Action):
    """Store the value and note that the flag was given on the command line (not a recipe's default)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        given = set(getattr(namespace, "_given", ()))
        given.add(self.dest)
        setattr(namespace, "_given", given)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one option per :class:`TrainConfig` field, defaults from the paper."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train the attentional colorization framework of Gao et al. 2020 (G_g, G_c, D_c, D_g). "
        "Defaults reproduce the paper's section 4.2. Multi-GPU / multi-node: start with torchrun.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "extra":
            continue
        default = getattr(defaults, f.name)
        flag = _flag(f.name)
        help_text = _HELP[f.name]
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif f.name == "paired_loss":
            parser.add_argument(flag, choices=PAIRED_LOSSES, default=default, help=help_text)
        elif f.name == "encoder_norm":
            parser.add_argument(flag, choices=ENCODER_NORMS, default=default, help=help_text)
        elif f.name == "encoder":
            parser.add_argument(flag, choices=tuple(ENCODERS), default=default, help=help_text)
        elif f.name in ("exclude", "distill_from"):
            parser.add_argument(flag, default="", help=help_text)
        elif f.name == "decoder_channels":
            parser.add_argument(flag, default=None, help=help_text)
        elif f.name == "encoder_lr":
            parser.add_argument(flag, type=float, default=None, help=help_text)
        elif f.name == "pooling":
            parser.add_argument(flag, default=",".join(default), help=help_text)
        elif f.name in ("gray_data", "init_from"):
            parser.add_argument(flag, default=None, help=help_text)
        elif f.name in ("d_max_channels", "export_working_size"):
            parser.add_argument(flag, type=int, default=None, help=help_text)
        elif f.name in ("time_budget", "snapshot_every"):
            parser.add_argument(flag, type=float, default=None, help=help_text)
        elif f.name in ("crop_size", "load_size"):
            parser.add_argument(flag, type=int, default=default, action=_StoreGiven, help=help_text)
        else:
            parser.add_argument(
                flag, type=type(default), default=default, required=f.name == "data", help=help_text
            )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="N",
        help="train at N x N: --crop-size N and --load-size N * 286 / 256 (the paper's 256 and 286); "
        "an explicit --load-size still wins; not with --crop-size",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a training recipe (TOML or JSON) whose keys are these options' names with underscores; "
        "options given on the command line override it",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if it exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _split(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    return [p.strip() for p in str(value).split(",") if p.strip()]


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "extra"}
    values["pooling"] = tuple(_split(values["pooling"]))
    values["exclude"] = tuple(_split(values["exclude"]))
    values["distill_from"] = tuple(_split(values["distill_from"]))
    if values["decoder_channels"] is not None:
        try:
            values["decoder_channels"] = tuple(int(v) for v in _split(values["decoder_channels"]))
        except ValueError:
            raise ValueError(f"decoder_channels must be comma-separated ints, got {values['decoder_channels']!r}") from None
    return TrainConfig(**values)


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a training recipe: a TOML (``.toml``) or JSON (``.json``) table of :class:`TrainConfig` fields.

    Raises ``ValueError`` naming an unreadable file, a syntax error or a key that is not a training option.
    Relative ``data``, ``out`` and ``init_from`` paths are kept as written (relative to where you run).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"recipe {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ValueError(f"recipe {str(path)!r} must be a .toml or .json file")
    text = path.read_text(encoding="utf-8")
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10: the same parser as a package (a dependency there)
            import tomli as tomllib
    try:
        # Both parsers' errors are ValueErrors (json.JSONDecodeError, tomllib.TOMLDecodeError).
        values = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except ValueError as err:
        raise ValueError(f"recipe {str(path)!r} is not valid {suffix[1:].upper()}: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"recipe {str(path)!r} must hold a table of options, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"recipe {str(path)!r} has unknown options: {', '.join(unknown)}")
    return values


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """Parse training options: a ``--config`` recipe's values become the defaults, flags override them."""
    parser = build_parser(prog)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config is not None:
        try:
            recipe = load_recipe(known.config)
        except ValueError as err:
            parser.error(str(err))
        parser.set_defaults(**recipe)
        if "data" in recipe:
            for action in parser._actions:
                if action.dest == "data":
                    action.required = False
    args = parser.parse_args(argv)
    given = getattr(args, "_given", set())
    if hasattr(args, "_given"):
        del args._given
    if args.image_size is not None:
        if "crop_size" in given:
            parser.error("--image-size and --crop-size both set the training resolution; give one of them")
        if args.image_size <= 0:
            parser.error(f"--image-size must be a positive integer, got {args.image_size}")
        args.crop_size = args.image_size
        if "load_size" not in given:
            args.load_size = load_size_for(args.image_size)
    return parser, args


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser, args = parse_args(argv, prog)
    try:
        config = config_from_args(args)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    from .trainer import Trainer

    try:
        trainer = Trainer(config, resume=args.resume, progress=not args.no_progress)
    except (FileNotFoundError, NotADirectoryError, ModuleNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    trainer.train()
    if trainer.world.is_main:
        print(f"exported colorizer to {trainer.out / 'colorizer'}")
    return 0
