"""The ``agincolor`` command: colorize files and folders, evaluate a model, train one.

    agincolor colorize photos/ scan.tif -o colorized/
    agincolor colorize old_film.mp4 -o film_colour.mp4 --temporal-strength 0.85   # needs agincolor[video]
    agincolor colorize photos/ -o colorized/ --model runs/landscape/colorizer --attention
    agincolor export --model runs/landscape/colorizer --onnx colorizer.onnx
    agincolor colorize photos/ -o colorized/ --onnx colorizer.onnx       # onnxruntime, no torch needed
    agincolor evaluate data/val/bsds500 --limit 50 --json
    agincolor train --data data/train --out runs/landscape
    agincolor demo --model runs/landscape/colorizer                      # a web page on 127.0.0.1:7860
    python -m agincolor --version

A thin layer over the public API (:class:`~agincolor.colorizer.Colorizer`, :class:`~agincolor.OnnxColorizer`,
:func:`~agincolor.export.export_onnx`, :mod:`agincolor.evaluate`, :mod:`agincolor.train.cli`,
:mod:`agincolor.demo`). Exit status:
0 success (photos that already have colour, left alone, are not failures), 1 some images failed, 2 usage
error (a missing input, a model that cannot be loaded, a bad option). Nothing here imports torch until a
PyTorch model is loaded, so ``colorize --onnx`` runs where torch is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import signal
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from ._files import move_into_place
from .demo import BUNDLED_MODEL, DEFAULT_HOST, DEFAULT_MAX_UPLOAD_MB, DEFAULT_PORT
from .image_processor import BRIGHTNESSES, IMAGE_SUFFIXES, MIN_SIZE, ImageReadError, has_colour, open_image
from .video import CODECS, VIDEO_SUFFIXES, is_video

__all__ = ["main"]

_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}
_TRAIN_EXTRA_HINT = 'agincolor train needs the training extra: pip install "agincolor[train]"'
_MAX_LISTED_SKIPS = 20


class UsageError(Exception):
    """A problem with the command line itself: reported on one line, exit status 2."""


# ----------------------------------------------------------------------------------- argument types
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _working_size(text: str) -> int:
    value = _positive_int(text)
    if value < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"the working size must be at least {MIN_SIZE}, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in [1, 65535], got {text!r}")
    return value


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _number_in(low: float, high: float, low_open: bool = False) -> Any:
    """An argparse type: a float in [low, high], or in (low, high] with ``low_open``."""
    span = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not ((low < value) if low_open else (low <= value)) or not value <= high:
            raise argparse.ArgumentTypeError(f"expected a number in {span}, got {text!r}")
        return value

    return parse


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="ID|DIR",
        default=None,
        help="a Colorizer folder (config.json + model.safetensors) or a Hugging Face Hub id 'org/name' "
        "(default: the model bundled with agincolor)",
    )
    parser.add_argument(
        "--size",
        type=_working_size,
        default=None,
        metavar="N",
        help="working resolution of the network, about N x N pixels (default: the model's own); "
        "outputs always keep the input's size",
    )
    parser.add_argument(
        "--onnx",
        metavar="FILE",
        default=None,
        help="run an ONNX file written by 'agincolor export' with onnxruntime instead of a PyTorch model "
        "(needs agincolor[onnx]; not with --model or --device)",
    )
    parser.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:N, mps")
    parser.add_argument("--batch-size", type=_positive_int, default=8, metavar="N", help="images per forward pass")
    parser.add_argument(
        "--saturation",
        type=_number_in(0.0, 4.0),
        default=None,
        metavar="S",
        help="scale of the predicted colour, in [0, 4]; below 1 is more muted (default: the model's own)",
    )
    parser.add_argument(
        "--temperature",
        type=_number_in(0.0, 10.0, low_open=True),
        default=None,
        metavar="T",
        help="for a model that predicts colour bins (trained with --paired-loss ab-bins): annealed-mean "
        "temperature in (0, 10]; 1 averages the likely colours, lower values pick the likeliest "
        "(default: the model's own)",
    )
    _add_decoding_option(parser)
    parser.add_argument(
        "--brightness",
        choices=tuple(BRIGHTNESSES),
        default=None,
        help="what of the input's brightness the output keeps exactly: its CIELAB lightness, or its BT.601 luma "
        "(the gray that convert('L') makes of the output is then the input) (default: the model's own)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_decoding_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--decoding",
        choices=("ab-mean", "srgb-mean"),
        default=None,
        help="for a model that predicts colour bins: average the bins' a and b (ab-mean) or their sRGB colours "
        "at each pixel's lightness (srgb-mean) (default: the model's own)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``agincolor``; ``train`` takes its options from :mod:`agincolor.train.cli`."""
    parser = argparse.ArgumentParser(
        prog="agincolor",
        description="Automatic colorization of grayscale photos (Gao et al. 2020).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    colorize = commands.add_parser(
        "colorize",
        help="colorize image files and folders",
        description="Colorize image and video files and folders. A folder is searched recursively for "
        f"{', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)} files (other files are ignored) and each is written to "
        "OUT/<its path relative to the folder>; a file input is written to OUT/<its name>. Outputs are "
        "PNG by default: the relative path is kept and the suffix becomes .png (see --format). Inputs "
        "are never overwritten, existing outputs only with --overwrite; each output is written to a "
        "temporary file first and then renamed, so a crash leaves no half-written image. Unreadable "
        "files are listed at the end and give exit status 1. Photos that already have colour (not gray, "
        "sepia or another single tone) are left alone and listed at the end; --recolor colorizes them too. "
        "Videos (needs agincolor[video]) keep their suffix, size, timestamps, rotation and audio; their "
        "colour is kept steady from frame to frame (--temporal-strength). A single video input with an "
        "-o that ends in a video suffix is written to that file.",
    )
    colorize.add_argument("inputs", nargs="+", metavar="INPUT", help="image and video files and folders")
    colorize.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output folder (created if missing); for a single video input, a file name ending in "
        f"{', '.join(VIDEO_SUFFIXES)} writes that file",
    )
    colorize.add_argument(
        "--format",
        choices=("png", "jpg", "same"),
        default="png",
        help="output format: png (default, keeps alpha), jpg (quality 95, alpha dropped) or same as the "
        "input's suffix",
    )
    colorize.add_argument(
        "--attention", action="store_true", help="also write the CAM heatmap as NAME.attention.png beside each output"
    )
    colorize.add_argument(
        "--recolor",
        action="store_true",
        help="also colorize photos that already have colour (by default they are left alone and listed; "
        "see agincolor.has_colour): their colours are replaced by ones predicted from their lightness",
    )
    colorize.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (an output that would replace an input is refused all the same)",
    )
    colorize.add_argument(
        "--temporal-strength",
        type=_number_in(0.0, 1.0),
        default=None,
        metavar="S",
        help="videos: how much each frame's colour follows the previous frames' along the motion, in [0, 1]; "
        "0 colours every frame on its own (default: agincolor.video.DEFAULT_TEMPORAL_STRENGTH)",
    )
    colorize.add_argument(
        "--codec",
        choices=tuple(CODECS),
        default=None,
        help="videos: h264 (default; vp9 for .webm), vp9, or ffv1 (lossless RGB; written as .mkv unless the "
        "output is .avi or .mkv)",
    )
    colorize.add_argument(
        "--crf",
        type=int,
        default=None,
        metavar="N",
        help="videos: the codec's quality, lower is better (h264 0-51, default 18; vp9 0-63, default 30)",
    )
    _add_model_options(colorize)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a model on a folder of colour photos",
        description="Run the evaluation protocol (256x256 colour photos, gray input from PIL's convert('L')) "
        "over the images under DIR: mean PSNR, SSIM and colorfulness of the model, beside the gray "
        "baseline and the ground truth. Unreadable files are listed on stderr and left out.",
    )
    evaluate.add_argument("folder", metavar="DIR", help="folder of colour photos (searched recursively)")
    evaluate.add_argument(
        "--limit", type=_positive_int, default=None, metavar="N", help="only the first N images (sorted by path)"
    )
    evaluate.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of a table (strict JSON: an infinite PSNR, from identical images, is null)",
    )
    _add_model_options(evaluate)

    export = commands.add_parser(
        "export",
        help="export a model to ONNX, for onnxruntime",
        description="Write a model's network to an ONNX file (opset 17 or later, dynamic batch, height and "
        "width) with the model's config in its metadata, for 'agincolor colorize --onnx' and "
        "agincolor.OnnxColorizer, which run it with onnxruntime and without torch. The exporter is "
        "torch.onnx.export(dynamo=True); it needs agincolor[onnx].",
    )
    export.add_argument(
        "--model",
        metavar="ID|DIR",
        default=None,
        help="a Colorizer folder or a Hugging Face Hub id 'org/name' (default: the bundled model)",
    )
    export.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    export.add_argument("--opset", type=_positive_int, default=18, metavar="N", help="ONNX opset, 17 or later")
    export.add_argument(
        "--size", type=_working_size, default=None, metavar="N", help="working resolution written into the file"
    )
    _add_decoding_option(export)
    export.add_argument("--overwrite", action="store_true", help="replace an existing OUT.onnx")

    demo = commands.add_parser(
        "demo",
        help="a local web page to colorize photos with (needs agincolor[demo])",
        description="Serve a web page (Gradio) to upload a photo or pick an example and see the gray input, "
        "the colour result and the attention map, with a saturation slider, a working-size choice, a choice "
        "among the bundled model and the --model ones, and a download of the full-resolution PNG. It binds "
        "to 127.0.0.1 (this machine only) unless --host says otherwise, and nothing it serves fetches "
        "anything from outside. Needs agincolor[demo].",
    )
    demo.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="ID|DIR",
        help=f"also offer this model (a Colorizer folder or a Hub id); repeatable. The {BUNDLED_MODEL} is "
        "always offered, first",
    )
    demo.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; 0.0.0.0 serves the network)",
    )
    demo.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    demo.add_argument(
        "--max-upload-mb",
        type=_positive_number,
        default=DEFAULT_MAX_UPLOAD_MB,
        metavar="MB",
        help=f"largest upload accepted, in megabytes (default {DEFAULT_MAX_UPLOAD_MB:g}); photos with more "
        "pixels than memory allows are refused too",
    )
    demo.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda, cuda:N, mps")

    # The trainer's own parser handles every train option, --help included.
    commands.add_parser(
        "train", add_help=False, help="train a model (options: agincolor train --help; needs agincolor[train])"
    )
    parser.set_defaults(subparsers=commands.choices)
    return parser


# ----------------------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``agincolor`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "train":
        return _train(rest)
    if rest:
        args.subparsers[args.command].error(f"unrecognized arguments: {' '.join(rest)}")
    commands = {"colorize": _colorize, "evaluate": _evaluate, "export": _export, "demo": _demo}
    run: Callable[[argparse.Namespace], int] = commands[args.command]
    try:
        return run(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _train(argv: list[str]) -> int:
    try:
        from .train.cli import main as train_main
    except ImportError as err:
        print(_TRAIN_EXTRA_HINT, file=sys.stderr)
        print(f"(import failed: {err})", file=sys.stderr)
        return 2
    return train_main(argv, prog="agincolor train")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _load_onnx(args: argparse.Namespace) -> Any:
    from .onnx_colorizer import OnnxColorizer

    if args.model is not None:
        raise UsageError("--onnx and --model each name the model to run; give one of them")
    if args.device != "auto":
        raise UsageError("--device applies to PyTorch models; an ONNX file runs on onnxruntime's CPU provider")
    try:
        model = OnnxColorizer(args.onnx)
    except (FileNotFoundError, ValueError, ImportError) as err:
        raise UsageError(f"cannot load {args.onnx!r}: {_one_line(err)}") from None
    if args.size is not None:
        model.working_size = args.size
    if args.temperature is not None:
        if model.config.get("ab_bins") is None:
            raise UsageError(f"--temperature applies only to a model that predicts colour bins; {args.onnx!r} does not")
        model.temperature = args.temperature
    decoding = getattr(args, "decoding", None)
    if decoding is not None and model.config.get("ab_bins") is None:
        raise UsageError(f"--decoding applies only to a model that predicts colour bins; {args.onnx!r} does not")
    if decoding is not None and decoding != model.decoding:
        # The decoding is part of the exported graph, not an input of it.
        raise UsageError(
            f"{args.onnx!r} decodes by {model.decoding}; export the model again with --decoding {decoding} for that"
        )
    if getattr(args, "brightness", None) is not None:
        model.brightness = args.brightness
    return model


def _load_model(args: argparse.Namespace) -> Any:
    if getattr(args, "onnx", None) is not None:
        return _load_onnx(args)
    import torch

    from .colorizer import Colorizer

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {args.device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    name = "the bundled default model" if args.model is None else repr(args.model)
    try:
        model = Colorizer.from_pretrained(args.model)
    except json.JSONDecodeError as err:  # raised by the Hub mixin without naming the file
        raise UsageError(f"cannot load {name}: its config.json is not valid JSON ({err})") from None
    except (FileNotFoundError, ValueError, OSError) as err:
        # 'runs/model' is both a relative path and a Hub id; say which reading failed how.
        hint = "" if args.model is None or Path(args.model).exists() else " (and there is no local folder of that name)"
        raise UsageError(f"cannot load {name}: {_one_line(err)}{hint}") from None
    try:
        model.to(device)
    except (RuntimeError, AssertionError) as err:  # torch asserts when CUDA is not compiled in
        raise UsageError(f"cannot use device {args.device!r}: {_one_line(err)}") from None
    if args.size is not None:
        model.working_size = args.size
    if args.temperature is not None:
        if model.ab_bins is None:
            raise UsageError(f"--temperature applies only to a model that predicts colour bins; {name} outputs an image")
        model.temperature = args.temperature
    decoding = getattr(args, "decoding", None)
    if decoding is not None:
        if model.ab_bins is None:
            raise UsageError(f"--decoding applies only to a model that predicts colour bins; {name} does not")
        model.decoding = decoding
    if getattr(args, "brightness", None) is not None:
        model.brightness = args.brightness
    return model


def _progress_bar(total: int, desc: str, disabled: bool) -> Any:
    from tqdm import tqdm

    # disable=None: shown only when stderr is a terminal.
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=True if disabled else None)


# ----------------------------------------------------------------------------------- colorize
@dataclass
class _Job:
    """One input image or video and the files it produces (the image last, so its presence marks a
    finished job)."""

    source: Path
    output: Path
    attention: Path | None
    video: bool = False

    @property
    def targets(self) -> list[Path]:
        return [self.output] if self.attention is None else [self.output, self.attention]


def _output_suffix(source: Path, fmt: str, codec: str | None = None) -> str:
    if is_video(source):
        # The input's container, unless it cannot hold the codec asked for (ffv1: .mkv/.avi; .webm: vp9).
        suffix = source.suffix.lower()
        if (codec == "ffv1" and suffix not in (".mkv", ".avi")) or (codec in ("h264", "ffv1") and suffix == ".webm"):
            return ".mkv"
        return source.suffix
    if fmt == "same":
        return source.suffix if source.suffix.lower() in _SAVE_FORMATS else ".png"
    return "." + fmt


def _find_sources(inputs: Sequence[str], out: Path) -> list[tuple[Path, Path]]:
    """(source file, its output path relative to OUT, before the suffix change) for every input."""
    out_resolved = out.resolve()
    found: list[tuple[Path, Path]] = []
    for text in inputs:
        path = Path(text)
        if path.is_file():
            found.append((path, Path(path.name)))
        elif path.is_dir():
            root = path.resolve()
            # An output folder inside an input folder is not searched: it holds our own results.
            skip_out = out_resolved != root and out_resolved.is_relative_to(root)
            for file in sorted(path.rglob("*")):
                if file.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES or not file.is_file():
                    continue
                if skip_out and file.resolve().is_relative_to(out_resolved):
                    continue
                found.append((file, file.relative_to(path)))
        elif path.exists():
            raise UsageError(f"input {text!r} is neither a file nor a folder")
        else:
            raise UsageError(f"input {text!r} does not exist")
    return found


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _plan(
    args: argparse.Namespace, out: Path, out_file: bool = False
) -> tuple[list[_Job], list[Path], list[tuple[Path, str]]]:
    """Sort every input into jobs to run, outputs skipped because they exist, and refusals. With
    ``out_file``, ``out`` is the output file of the single video input."""
    sources = _find_sources(args.inputs, out.parent if out_file else out)
    # Inputs are recognised by inode, so a symlink, hard link or case-insensitive name is caught too.
    input_ids = {i for i in (_file_id(s) for s, _ in sources) if i is not None}
    claimed: dict[Path, Path] = {}
    jobs: list[_Job] = []
    skipped: list[Path] = []
    refused: list[tuple[Path, str]] = []
    seen_sources: set[tuple[int, int] | None] = set()
    for source, relative in sources:
        source_id = _file_id(source)
        if source_id is not None and source_id in seen_sources:
            continue  # the same file named twice (a file and its folder)
        seen_sources.add(source_id)
        video = is_video(source)
        if out_file:
            output = out
        else:
            output = out / relative.with_suffix(_output_suffix(source, args.format, args.codec))
        attention = output.with_name(output.stem + ".attention.png") if args.attention and not video else None
        job = _Job(source, output, attention, video)
        reason = None
        for target in job.targets:
            key = target.resolve()
            if key in claimed:
                reason = f"its output {str(target)!r} is also the output of {str(claimed[key])!r}"
            elif _file_id(target) in input_ids:
                reason = f"its output {str(target)!r} would replace an input file"
            elif target.is_dir():
                reason = f"its output {str(target)!r} is a folder"
            if reason:
                break
        if reason:
            refused.append((source, reason))
            continue
        for target in job.targets:
            claimed[target.resolve()] = source
        if not args.overwrite and any(t.exists() for t in job.targets):
            skipped.append(job.output)
        else:
            jobs.append(job)
    return jobs, skipped, refused


def _colorize_images(model: Any, images: list[Any], args: argparse.Namespace) -> list[Any]:
    """Colorize a batch; if it fails, colorize one by one so one bad image does not sink the others.

    Returns, per image, a ColorizeResult / PIL image or the exception that image raised.
    """
    kwargs = dict(batch_size=args.batch_size, return_attention=args.attention, saturation=args.saturation)
    errors = (ValueError, TypeError, MemoryError, RuntimeError, OSError)
    try:
        return list(model.colorize(images, **kwargs))
    except errors as err:
        if len(images) == 1:
            return [err]
    results: list[Any] = []
    for image in images:
        try:
            results.append(model.colorize(image, **kwargs))
        except errors as err:
            results.append(err)
    return results


def _save_atomic(image: Any, path: Path, overwrite: bool) -> None:
    """Write ``image`` to ``path`` through a temporary file in the same folder, then rename it into place.

    Without ``overwrite`` the rename is a hard link, which fails rather than replace a file that
    appeared meanwhile.
    """
    fmt = _SAVE_FORMATS.get(path.suffix.lower(), "PNG")
    if fmt == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 gives the file the usual permissions (umask applied), unlike mkstemp's 0o600.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))
            f.flush()
            os.fsync(f.fileno())
        move_into_place(tmp, path, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _colorize(args: argparse.Namespace) -> int:
    out = Path(args.output)
    out_file = is_video(out) and not out.is_dir()
    if out_file and (len(args.inputs) != 1 or not Path(args.inputs[0]).is_file() or not is_video(args.inputs[0])):
        raise UsageError(
            f"output {args.output!r} is a video file name, which takes a single video input; give a folder "
            "as -o for several inputs"
        )
    if not out_file and out.exists() and not out.is_dir():
        raise UsageError(f"output {args.output!r} exists and is not a folder")
    if args.crf is not None and args.crf < 0:
        raise UsageError(f"--crf must be 0 or more, got {args.crf}")
    jobs, skipped, failed = _plan(args, out, out_file)
    if not jobs and not skipped and not failed:
        suffixes = ", ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        raise UsageError(f"no image files or videos ({suffixes}) found in {', '.join(args.inputs)}")
    videos = [job for job in jobs if job.video]
    jobs = [job for job in jobs if not job.video]
    model = _load_model(args)
    written = 0
    coloured: list[Path] = []
    with _progress_bar(len(jobs), "colorizing", args.no_progress or not jobs) as bar:
        for start in range(0, len(jobs), args.batch_size):
            loaded: list[tuple[_Job, Any]] = []
            for job in jobs[start : start + args.batch_size]:
                try:
                    image = open_image(job.source)
                    if not args.recolor and has_colour(image):
                        coloured.append(job.source)
                        bar.update(1)
                        continue
                    loaded.append((job, image))
                except (ImageReadError, ValueError, TypeError) as err:
                    failed.append((job.source, _one_line(err)))
                    bar.update(1)
            with warnings.catch_warnings():
                # Photos in colour reach the model only when --recolor asked for it: no warning each.
                warnings.filterwarnings("ignore", message=".*already has colour", category=UserWarning)
                results = _colorize_images(model, [image for _, image in loaded], args) if loaded else []
            for (job, _), result in zip(loaded, results):
                try:
                    if isinstance(result, Exception):
                        raise result
                    if job.attention is not None:
                        _save_atomic(result.attention, job.attention, args.overwrite)
                        result = result.image
                    _save_atomic(result, job.output, args.overwrite)
                    written += 1
                except (ValueError, TypeError, MemoryError, RuntimeError, OSError) as err:
                    failed.append((job.source, _one_line(err)))
                bar.update(1)
    videos_written = sum(_colorize_video(model, job, args, failed, coloured) for job in videos)
    _report(out, written, skipped, failed, coloured, videos_written)
    return 1 if failed else 0


def _colorize_video(model: Any, job: _Job, args: argparse.Namespace, failed: list, coloured: list) -> bool:
    """One video, with a progress bar that counts frames; True when it was written."""
    from tqdm import tqdm

    from .video import VideoReadError, colorize_video_file

    bar = tqdm(desc=job.source.name, unit="frame", file=sys.stderr, disable=True if args.no_progress else None)

    def progress(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done)

    from .onnx_colorizer import OnnxColorizer

    chroma = model.chroma if isinstance(model, OnnxColorizer) else model._chroma
    saturation = model.saturation if args.saturation is None else args.saturation
    try:
        with bar:
            result = colorize_video_file(
                job.source, job.output, chroma, working_size=model.working_size, saturation=saturation,
                **({} if args.temporal_strength is None else {"temporal_strength": args.temporal_strength}),
                codec=args.codec, quality=args.crf, batch_size=min(args.batch_size, 8), overwrite=args.overwrite,
                if_colour="ignore" if args.recolor else "skip", progress=progress, resample=model.resample,
                brightness=model.brightness,
            )  # fmt: skip
    except ImportError as err:
        raise UsageError(_one_line(err)) from None
    except (VideoReadError, ValueError, TypeError, MemoryError, RuntimeError, OSError) as err:
        failed.append((job.source, _one_line(err)))
        return False
    if result.skipped_colour:
        coloured.append(job.source)
        return False
    for note in result.audio:
        if note != "copied":
            print(f"{job.source}: audio {note}", file=sys.stderr)
    if result.repeated:
        print(f"{job.source}: {result.repeated} undecodable frames replaced by the previous frame", file=sys.stderr)
    if result.lost:
        print(f"{job.source}: {result.lost} undecodable frames before the first good one left out", file=sys.stderr)
    if result.truncated:
        print(f"{job.source}: the file could not be read to its end; {result.frames} frames written", file=sys.stderr)
    return True


def _report(
    out: Path,
    written: int,
    skipped: list[Path],
    failed: list[tuple[Path, str]],
    coloured: Sequence[Path] = (),
    videos: int = 0,
) -> None:
    if skipped:
        print(f"skipped {len(skipped)} existing outputs (--overwrite replaces them):", file=sys.stderr)
        for path in skipped[:_MAX_LISTED_SKIPS]:
            print(f"  {path}", file=sys.stderr)
        if len(skipped) > _MAX_LISTED_SKIPS:
            print(f"  ... and {len(skipped) - _MAX_LISTED_SKIPS} more", file=sys.stderr)
    if coloured:
        print(
            f"left {len(coloured)} photos that already have colour as they are (--recolor colorizes them too, "
            "replacing their colours):",
            file=sys.stderr,
        )
        for path in coloured[:_MAX_LISTED_SKIPS]:
            print(f"  {path}", file=sys.stderr)
        if len(coloured) > _MAX_LISTED_SKIPS:
            print(f"  ... and {len(coloured) - _MAX_LISTED_SKIPS} more", file=sys.stderr)
    if failed:
        print(f"{len(failed)} inputs failed:", file=sys.stderr)
        for path, reason in failed:
            print(f"  {path}: {reason}", file=sys.stderr)
    print(
        f"wrote {written} images{f' and {videos} videos' if videos else ''} to {out} ({len(skipped)} skipped, "
        f"{len(coloured)} already in colour, "
        f"{len(failed)} failed)"
    )


# ----------------------------------------------------------------------------------- export
def _export(args: argparse.Namespace) -> int:
    target = Path(args.onnx)
    if target.suffix.lower() != ".onnx":
        raise UsageError(f"--onnx {args.onnx!r}: the file to write must end in .onnx")
    if target.is_dir():
        raise UsageError(f"--onnx {args.onnx!r} is a folder; give the .onnx file to write")
    if target.exists() and not args.overwrite:
        raise UsageError(f"{args.onnx!r} exists; --overwrite replaces it")
    if args.opset < 17:
        raise UsageError(f"--opset must be 17 or later, got {args.opset}")
    try:
        from .export import export_onnx
    except ImportError as err:
        raise UsageError(f"export needs torch and the onnx extra: {_one_line(err)}") from None
    onnx_path = args.onnx
    # The model to export is a PyTorch one, loaded as colorize loads it (the output is not an input).
    spec = dict(model=args.model, onnx=None, device="cpu", size=args.size, temperature=None, decoding=args.decoding)
    model = _load_model(argparse.Namespace(**spec))
    try:
        export_onnx(model, onnx_path, opset=args.opset)
    except ImportError as err:
        raise UsageError(_one_line(err)) from None
    print(f"exported {'the bundled default model' if args.model is None else args.model} to {onnx_path}")
    return 0


# ----------------------------------------------------------------------------------- demo
def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _demo(args: argparse.Namespace) -> int:
    from . import demo as web

    try:
        web.import_gradio()
    except ImportError as err:
        raise UsageError(_one_line(err)) from None

    def load(spec: str | None) -> Any:
        return _load_model(argparse.Namespace(model=spec, onnx=None, device=args.device, size=None, temperature=None))

    server = web.Demo(web.load_models([None, *args.model], load), max_upload_mb=args.max_upload_mb)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: whoever reaches this machine there can use the demo", file=sys.stderr)
    try:
        try:
            app = web.launch(server, host=args.host, port=args.port, block=False, quiet=True)
        except OSError as err:  # the port is taken, or the address is not this machine's
            reason = "the port is in use (--port chooses another)" if "empty port" in str(err) else _one_line(err)
            raise UsageError(f"cannot serve on {args.host}:{args.port}: {reason}") from None
        print(f"agincolor demo at {app.local_url} ({', '.join(server.model_choices)}); Ctrl+C stops it", flush=True)
        # A plain kill stops the server as Ctrl+C does, so the results folder is removed too.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            app.block_thread()
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        server.close()
    return 0


# ----------------------------------------------------------------------------------- evaluate
def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table, list_images

    try:
        files = list_images(args.folder)
    except (NotADirectoryError, ValueError) as err:
        raise UsageError(_one_line(err)) from None
    if args.limit is not None:
        files = files[: args.limit]
    model = _load_model(args)

    def colorize(images: list[Any]) -> list[Any]:
        return model.colorize(images, batch_size=args.batch_size, saturation=args.saturation)

    with _progress_bar(len(files), "evaluating", args.no_progress) as bar:
        try:
            result = evaluate(colorize, files, batch_size=args.batch_size, progress=bar.update)
        except ValueError as err:  # no readable image at all
            print(f"error: {_one_line(err)} in {args.folder!r}", file=sys.stderr)
            return 1
    if result.skipped:
        print(f"skipped {len(result.skipped)} unreadable files:", file=sys.stderr)
        for line in result.skipped:
            print(f"  {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(_finite_or_null(result.to_dict()), indent=2, allow_nan=False))
    else:
        print(format_table(result))
    return 0


def _finite_or_null(value: Any) -> Any:
    """Replace inf and NaN (the PSNR of identical images is inf) by null: strict JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
