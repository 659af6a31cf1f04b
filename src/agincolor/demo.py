"""The local web demo: ``agincolor demo`` (needs the ``demo`` extra, which installs Gradio).

    agincolor demo                                   # the bundled model, http://127.0.0.1:7860
    agincolor demo --model runs/v04/colorizer --port 8080

A page to drop a photo on (or pick an example) and look: the gray input, the colour result and the CAM
attention map side by side, a saturation slider, a working-size choice, a model choice among the models
given at launch (no path box: the page cannot make the server read files of its choosing) and a button
that downloads the full-resolution PNG. A photo that already has colour (:func:`agincolor.has_colour`) is
shown with a warning and colorized only when the page's recolor toggle is on, as ``agincolor colorize``
does with ``--recolor``. A second tab takes a video file (with the ``video`` extra) and gives back an H.264
.mp4 to watch and download (:meth:`Demo.run_video`, through :meth:`agincolor.Colorizer.colorize_video`).

The work is in :class:`Demo`, which needs no Gradio and is what the tests call: it reads an upload, refuses
bad files with a message (:class:`DemoError`; corrupt, not an image, too many bytes or pixels), colorizes
and writes the PNG to download. :func:`build_app` puts a Gradio page around it and :func:`launch` serves
that page; every error reaches the page as a message, never as a stack trace, and the server goes on.

Nothing leaves the machine: the server binds to 127.0.0.1 unless told otherwise, Gradio's analytics and
version check are off, and the page uses the system's fonts, so the browser fetches nothing from outside
(the browser test in ``tests/test_demo_browser.py`` records every request the page makes).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import secrets
import shutil
import sys
import tempfile
import threading
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image, UnidentifiedImageError

from .image_processor import MIN_SIZE, check_size, has_colour, prepare_image

__all__ = [
    "BUNDLED_MODEL",
    "DEFAULT_HOST",
    "DEFAULT_MAX_UPLOAD_MB",
    "DEFAULT_PORT",
    "WORKING_SIZES",
    "Demo",
    "DemoError",
    "DemoResult",
    "VideoDemoResult",
    "build_app",
    "example_images",
    "import_gradio",
    "launch",
    "load_models",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 50.0
MB = 1_000_000  # --max-upload-mb counts decimal megabytes, as Gradio's "50mb" does
#: The model choice's label for the model bundled with agincolor.
BUNDLED_MODEL = "bundled default model"
#: The working sizes offered on the page (besides each model's own).
WORKING_SIZES = (128, 192, 256, 384, 512)
#: The long side of the images shown on the page; the download keeps the input's full size.
PREVIEW_SIDE = 1024
# How many past results keep their PNG on disk: Gradio copies a returned file into its own cache as soon
# as the handler returns, so only the latest few are still needed.
_KEEP_RESULTS = 4
EXAMPLES_DIR = Path(__file__).resolve().parent / "demo_images"

_VIDEO_HINT = '**Video needs the video extra** on the server: `pip install "agincolor[video]"`'
_GRADIO_HINT = 'agincolor demo needs the demo extra: pip install "agincolor[demo]"'


class DemoError(ValueError):
    """A problem with an upload or a setting, in words for the page (no stack trace)."""


@dataclass
class DemoResult:
    """What the page shows for one request.

    gray, colour, attention: previews (long side at most ``PREVIEW_SIDE``), or None when there is nothing
        to show (an error; ``colour`` and ``attention`` also for a colour photo left as it is).
    download: the full-resolution colour PNG, or None.
    message: a line of Markdown for the page: what was done, or what is wrong with the upload.
    """

    gray: Image.Image | None
    colour: Image.Image | None
    attention: Image.Image | None
    download: Path | None
    message: str


@dataclass
class VideoDemoResult:
    """What the page's video tab shows for one request.

    video: the colorized video (H.264 in .mp4, the input's size, frame times and audio), or None.
    message: a line of Markdown for the page: what was done (frames, scene cuts, repeated frames), or what
        is wrong with the upload.
    """

    video: Path | None
    message: str


def example_images() -> list[Path]:
    """The example photos shipped with the package (gray versions of ``examples/images``)."""
    return sorted(p for p in EXAMPLES_DIR.glob("*.jpg") if p.is_file())


def _escape(text: str) -> str:
    """Text as Markdown shows it literally within a line (file names may hold _ or *)."""
    return "".join("\\" + c if c in "\\`*_[]<>|~" else c for c in text)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _preview(image: Image.Image) -> Image.Image:
    if max(image.size) <= PREVIEW_SIDE:
        return image
    small = image.copy()
    small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    return small


def _check_upload(path: str | os.PathLike[str] | None, max_bytes: int, ask: str) -> Path:
    """The upload's path, or :class:`DemoError` when there is none (``ask`` says what to do), it is gone, or
    it has more than ``max_bytes``."""
    if path is None or str(path) == "":
        raise DemoError(ask)
    file = Path(path)
    name = _escape(file.name)
    try:
        size = file.stat().st_size
    except OSError:
        raise DemoError(f"The upload {name} could not be found on the server; upload it again.") from None
    if size > max_bytes:
        raise DemoError(
            f"**{name} is too large**: {size / MB:.3g} MB; this demo takes files up to {max_bytes / MB:g} MB."
        )
    return file


def _not_a_video(name: str) -> str:
    return (
        f"**{name} is not a video agincolor can read**: the file is corrupt or not a video "
        "(MP4, MOV, MKV, WebM or AVI)."
    )


# As colorize_video_file decides: the first frames (its first batch) measured with has_colour.
_COLOUR_FRAMES = 4


def _video_has_colour(file: Path, name: str) -> bool:
    """True when one of the first frames of the video ``file`` has colour; :class:`DemoError` when it is no
    video PyAV can decode, or the ``video`` extra is missing."""
    try:
        from .video import VideoReadError, iter_frames

        frames = iter(iter_frames(file))
        try:
            found = any(has_colour(rgb) for rgb, _ in itertools.islice(frames, _COLOUR_FRAMES))
        finally:
            frames.close()  # type: ignore[attr-defined]
    except ImportError as err:
        raise DemoError(f"{_VIDEO_HINT} ({_escape(_one_line(err))})") from None
    except VideoReadError:
        raise DemoError(_not_a_video(name)) from None
    except Exception as err:  # noqa: BLE001  PyAV's decoding errors (av.FFmpegError and kin)
        if type(err).__module__.split(".")[0] != "av":
            raise
        raise DemoError(_not_a_video(name)) from None
    return found


def _number_in(value: Any, top: float, what: str) -> float | None:
    """``value`` as a float in [0, ``top``] (None stays None), or :class:`DemoError` saying ``what``."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not 0 <= number <= top:
        raise DemoError(f"{what}, got {value!r}.")
    return number


def read_upload(path: str | os.PathLike[str] | None, max_bytes: int) -> Image.Image:
    """Open an uploaded file as a decoded PIL image, or raise :class:`DemoError` saying what is wrong.

    Refused: no file, a file of more than ``max_bytes``, a file PIL cannot decode (corrupt or not an
    image), one with more pixels than PIL's decompression-bomb limit or than memory allows (the
    Colorizer's own guard, :func:`agincolor.image_processor.check_size`), and one smaller than 1x1.
    """
    file = _check_upload(path, max_bytes, "Upload a photo or pick one of the examples.")
    name = _escape(file.name)
    try:
        with Image.open(file) as opened:
            opened.load()
            image = opened.copy()
    except Image.DecompressionBombError as err:
        raise DemoError(f"**{name} has too many pixels** for this demo: {_escape(_one_line(err))}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise DemoError(
            f"**{name} is not an image agincolor can read**: the file is corrupt or not an image "
            "(JPEG, PNG, WebP, BMP or TIFF)."
        ) from None
    try:
        check_size(image.height, image.width)
    except (MemoryError, ValueError) as err:
        raise DemoError(f"**{name} is too large to colorize here**: {_escape(_one_line(err))}") from None
    return image


class Demo:
    """The demo's work, without Gradio: colorize an uploaded file with one of a fixed set of models.

    Args:
        models: label -> loaded model (a :class:`~agincolor.Colorizer` or anything with its ``colorize``,
            ``working_size`` and ``saturation``); the page offers exactly these labels, the first is the
            default. Labels are what the user gave at launch (``--model``) or :data:`BUNDLED_MODEL`.
        max_upload_mb: the largest file accepted, in megabytes (10**6 bytes). Gradio refuses bigger
            uploads before they reach the server; :meth:`run` checks again, for examples and API calls.
        output_dir: where the full-resolution PNGs and the colour videos are written (default: a new
            temporary folder, removed by :meth:`close`).
    """

    def __init__(
        self,
        models: Mapping[str, Any],
        max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
        output_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not models:
            raise ValueError("a Demo needs at least one model")
        if isinstance(max_upload_mb, bool) or not isinstance(max_upload_mb, (int, float)) or not max_upload_mb > 0:
            raise ValueError(f"max_upload_mb must be a positive number, got {max_upload_mb!r}")
        self.models = dict(models)
        self.max_upload_mb = float(max_upload_mb)
        self._own_dir = output_dir is None
        self.output_dir = Path(tempfile.mkdtemp(prefix="agincolor-demo-") if output_dir is None else output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        # One request at a time changes a model's working size; Gradio runs handlers in threads.
        self._lock = threading.Lock()
        self._recent: collections.deque[Path] = collections.deque()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def model_choices(self) -> list[str]:
        """The labels of the model choice, the default first."""
        return list(self.models)

    def working_size_choices(self) -> list[int]:
        """The working sizes offered: :data:`WORKING_SIZES` and every model's own."""
        own = {int(m.working_size) for m in self.models.values()}
        return sorted(set(WORKING_SIZES) | own)

    @property
    def default_working_size(self) -> int:
        return int(next(iter(self.models.values())).working_size)

    @property
    def default_saturation(self) -> float:
        return float(next(iter(self.models.values())).saturation)

    def run(
        self,
        path: str | os.PathLike[str] | None,
        model: str | None = None,
        saturation: float | None = None,
        working_size: int | None = None,
        recolor: bool = False,
    ) -> DemoResult:
        """Colorize the file at ``path`` and say what happened.

        Never raises for a bad upload or setting: the result then has no images and a ``message`` naming
        the problem. A photo that already has colour is left as it is (with a warning) unless ``recolor``.
        ``model`` is one of :attr:`model_choices` (None: the default); ``saturation`` in [0, 4] (None: the
        model's own); ``working_size`` at least 32 (None: the model's own).
        """
        try:
            return self._run(path, model, saturation, working_size, recolor)
        except DemoError as err:
            return DemoResult(None, None, None, None, str(err))

    def _run(
        self, path: Any, model_name: str | None, saturation: float | None, working_size: Any, recolor: bool
    ) -> DemoResult:
        model = self._model(model_name)
        size = self._working_size(model, working_size)
        saturation = self._saturation(saturation)
        image = read_upload(path, self.max_upload_bytes)
        name = _escape(Path(path).name)
        try:
            prepared, _ = prepare_image(image)
            coloured = has_colour(image)
        except (ValueError, TypeError) as err:  # a mode PIL decodes but agincolor does not take
            raise DemoError(f"**{name} cannot be colorized**: {_escape(_one_line(err))}") from None
        gray = Image.fromarray((prepared.gray * 255 + 0.5).clip(0, 255).astype("uint8"), mode="L")
        if coloured and not recolor:
            return DemoResult(
                _preview(gray),
                None,
                None,
                None,
                f"**{name} already has colour.** agincolor colorizes gray photos; colorizing this one would "
                "replace its colours with ones predicted from its lightness. Turn on *Recolor photos that "
                "already have colour* to do it anyway.",
            )
        with self._lock, warnings.catch_warnings():
            # The page already said the photo has colour; the Colorizer's warning would only reach the log.
            warnings.filterwarnings("ignore", message=".*already has colour", category=UserWarning)
            own_size = model.working_size
            model.working_size = size
            try:
                result = model.colorize(image, return_attention=True, saturation=saturation)
            except (ValueError, TypeError, MemoryError, RuntimeError, OSError) as err:
                raise DemoError(f"**{name} could not be colorized**: {_escape(_one_line(err))}") from None
            finally:
                model.working_size = own_size
            download = self._save(result.image, Path(path).stem)
        width, height = result.image.size
        note = " (its own colours replaced, as asked)" if coloured else ""
        return DemoResult(
            _preview(gray),
            _preview(result.image),
            _preview(result.attention),
            download,
            f"Colorized {name}{note}: {width}x{height} pixels, working size {size}. "
            "The download is the full-resolution PNG.",
        )

    def run_video(
        self,
        path: str | os.PathLike[str] | None,
        model: str | None = None,
        saturation: float | None = None,
        recolor: bool = False,
        temporal_strength: float | None = None,
    ) -> VideoDemoResult:
        """Colorize the video file at ``path`` (needs the ``video`` extra) and say what happened.

        As :meth:`run`: never raises for a bad upload or setting (the result then has no video and a
        ``message`` naming the problem), and a video whose first frames already have colour is left as it
        is unless ``recolor``. ``temporal_strength`` in [0, 1] (None: the library's default). The model's
        own working size is used. The result is an H.264 .mp4 in :attr:`output_dir`.
        """
        try:
            return self._run_video(path, model, saturation, recolor, temporal_strength)
        except DemoError as err:
            return VideoDemoResult(None, str(err))

    def _run_video(
        self, path: Any, model_name: str | None, saturation: float | None, recolor: bool, strength: Any
    ) -> VideoDemoResult:
        model = self._model(model_name)
        saturation = self._saturation(saturation)
        strength = self._temporal_strength(strength)
        file = _check_upload(path, self.max_upload_bytes, "Upload a video.")
        name = _escape(file.name)
        coloured = _video_has_colour(file, name)
        if coloured and not recolor:
            return VideoDemoResult(
                None,
                f"**{name} already has colour.** agincolor colorizes gray videos; colorizing this one would "
                "replace its colours with ones predicted from its lightness. Turn on *Recolor videos that "
                "already have colour* to do it anyway.",
            )
        folder = self._new_folder()
        target = folder / f"{file.stem}_colour.mp4"
        from .video import VideoReadError

        try:
            with self._lock, warnings.catch_warnings():
                # The page already said the video has colour; the Colorizer's warning would only reach the log.
                warnings.filterwarnings("ignore", message=".*already has colour", category=UserWarning)
                result = model.colorize_video(
                    file, target, temporal_strength=strength, codec="h264", saturation=saturation
                )
        except BaseException as err:
            self._drop(folder)  # a failed request leaves nothing behind
            if isinstance(err, ImportError):
                raise DemoError(f"{_VIDEO_HINT} ({_escape(_one_line(err))})") from None
            if isinstance(err, VideoReadError):
                raise DemoError(_not_a_video(name)) from None
            if isinstance(err, (ValueError, TypeError, MemoryError, RuntimeError, OSError)):
                raise DemoError(f"**{name} could not be colorized**: {_escape(_one_line(err))}") from None
            raise
        notes = [f"{result.frames} frames", f"{result.cuts} scene cuts"]
        if result.repeated:
            notes.append(f"{result.repeated} undecodable frames replaced by the previous one")
        if result.lost:
            notes.append(f"{result.lost} undecodable frames before the first good one left out")
        if result.truncated:
            notes.append("the file could not be read to its end")
        notes += [f"audio {_escape(note)}" for note in result.audio if note != "copied"]
        note = " (its own colours replaced, as asked)" if coloured else ""
        return VideoDemoResult(
            target, f"Colorized {name}{note}: {', '.join(notes)}. The download is the H.264 .mp4."
        )

    def _model(self, name: str | None) -> Any:
        if name is None:
            return next(iter(self.models.values()))
        if name not in self.models:
            choices = ", ".join(self.models)
            raise DemoError(f"Unknown model {_escape(str(name))!s}; this demo was started with: {_escape(choices)}.")
        return self.models[name]

    @staticmethod
    def _saturation(value: Any) -> float | None:
        return _number_in(value, 4, "The saturation must be a number in [0, 4]")

    @staticmethod
    def _temporal_strength(value: Any) -> float | None:
        return _number_in(value, 1, "The temporal strength must be a number in [0, 1] (0: frame by frame)")

    @staticmethod
    def _working_size(model: Any, value: Any) -> int:
        if value is None:
            return int(model.working_size)
        try:
            size = int(value)
        except (TypeError, ValueError):
            size = 0
        if isinstance(value, bool) or size != value or size < MIN_SIZE:
            raise DemoError(f"The working size must be a whole number of at least {MIN_SIZE}, got {value!r}.")
        return size

    def _save(self, image: Image.Image, stem: str) -> Path:
        """Write the full-resolution PNG to a folder of its own (the name the browser saves it under) and
        forget the oldest results beyond the last few."""
        folder = self._new_folder()
        target = folder / f"{stem}_colour.png"
        tmp = folder / f".{target.name}.tmp"
        image.save(tmp, format="PNG")
        os.replace(tmp, target)
        return target

    def _new_folder(self) -> Path:
        """A new folder of its own for one result; the oldest results beyond the last few are removed."""
        folder = self.output_dir / secrets.token_hex(8)
        folder.mkdir()
        self._recent.append(folder)
        while len(self._recent) > _KEEP_RESULTS:
            shutil.rmtree(self._recent.popleft(), ignore_errors=True)
        return folder

    def _drop(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(ValueError):
            self._recent.remove(folder)

    def close(self) -> None:
        """Remove the PNGs written so far (and the folder, if the Demo made it)."""
        while self._recent:
            shutil.rmtree(self._recent.popleft(), ignore_errors=True)
        if self._own_dir:
            shutil.rmtree(self.output_dir, ignore_errors=True)


# ----------------------------------------------------------------------------------- the page
def import_gradio() -> Any:
    """Import Gradio with its analytics off, or raise ImportError saying which extra installs it."""
    # Off before Gradio is imported: it reads these at import and at launch. Nothing leaves the machine.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    try:
        import gradio
    except ImportError as err:
        raise ImportError(f"{_GRADIO_HINT} ({err})") from None
    return gradio


def _theme(gr: Any) -> Any:
    """Gradio's default look with the system's fonts: its own themes name web fonts (served by Gradio,
    or by Google for a GoogleFont), and a page that fetches nothing needs none."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


_INTRO = """\
# agincolor: colorize a gray photo
Upload a grayscale photo or pick an example. The network runs at the working size; its colour is joined
with the photo's own lightness at full resolution, so the download has the input's size and lightness.
Everything runs on this machine.
"""


def build_app(demo: Demo) -> Any:
    """The Gradio page around ``demo`` (a ``gradio.Blocks``; serve it with :func:`launch`)."""
    gr = import_gradio()

    def respond(path: Any, model: str, working_size: Any, saturation: float, recolor: bool) -> tuple[Any, ...]:
        try:
            result = demo.run(path, model, saturation, working_size, bool(recolor))
        except Exception as err:  # noqa: BLE001  the page gets a message; the log gets the trace
            traceback.print_exc()
            result = DemoResult(None, None, None, None, f"**Something went wrong**: {_escape(_one_line(err))}")
        has_file = result.download is not None
        return (
            result.gray,
            result.colour,
            result.attention,
            gr.DownloadButton(value=str(result.download) if has_file else None, interactive=has_file),
            result.message,
        )

    def respond_video(path: Any, model: str, saturation: float, recolor: bool, strength: float) -> tuple[Any, ...]:
        try:
            result = demo.run_video(path, model, saturation, bool(recolor), strength)
        except Exception as err:  # noqa: BLE001  the page gets a message; the log gets the trace
            traceback.print_exc()
            result = VideoDemoResult(None, f"**Something went wrong**: {_escape(_one_line(err))}")
        has_file = result.video is not None
        return (
            str(result.video) if has_file else None,
            gr.DownloadButton(value=str(result.video) if has_file else None, interactive=has_file),
            result.message,
        )

    with gr.Blocks(title="agincolor demo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(_INTRO, latex_delimiters=[])
        with gr.Tab("Photo", elem_id="photo-tab"):
            _photo_tab(gr, demo, respond)
        with gr.Tab("Video", elem_id="video-tab"):
            _video_tab(gr, demo, respond_video)
    return app


def _photo_tab(gr: Any, demo: Demo, respond: Any) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Photo", type="filepath", file_count="single", elem_id="upload")
            examples = example_images()
            if examples:
                gr.Examples(examples=[[str(p)] for p in examples], inputs=[upload], label="Examples")
        with gr.Column(scale=1):
            model = _model_choice(gr, demo, "model")
            size = gr.Radio(
                demo.working_size_choices(), value=demo.default_working_size, label="Working size",
                info="the resolution the network sees; the output keeps the photo's size", elem_id="size",
            )  # fmt: skip
            saturation = _saturation_slider(gr, demo, "saturation")
            recolor = gr.Checkbox(False, label="Recolor photos that already have colour", elem_id="recolor")
    status = gr.Markdown("Upload a photo or pick one of the examples.", elem_id="status", latex_delimiters=[])
    with gr.Row(equal_height=True):
        common = dict(type="pil", format="png", interactive=False, buttons=["fullscreen"])
        gray = gr.Image(label="Gray input", elem_id="gray", **common)
        colour = gr.Image(label="Colour", elem_id="colour", **common)
        attention = gr.Image(label="Attention map (CAM heatmap)", elem_id="attention", **common)
    download = gr.DownloadButton(
        "Download the full-resolution PNG", interactive=False, variant="primary", elem_id="download"
    )
    inputs = [upload, model, size, saturation, recolor]
    outputs = [gray, colour, attention, download, status]
    for event in (upload.change, model.change, size.change, saturation.release, recolor.change):
        event(respond, inputs, outputs, concurrency_limit=1, concurrency_id="colorize", show_progress="minimal")


def _model_choice(gr: Any, demo: Demo, elem_id: str) -> Any:
    """The model dropdown of a tab: the models given at launch, the first chosen, no free text."""
    return gr.Dropdown(
        demo.model_choices, value=demo.model_choices[0], label="Model", elem_id=elem_id,
        allow_custom_value=False, filterable=False,
    )  # fmt: skip


def _saturation_slider(gr: Any, demo: Demo, elem_id: str) -> Any:
    """The saturation slider of a tab, starting at the first model's own saturation."""
    return gr.Slider(
        0.0, 2.0, value=demo.default_saturation, step=0.05, label="Saturation", elem_id=elem_id,
        info="scale of the predicted colour; below 1 is more muted",
    )  # fmt: skip


def _video_tab(gr: Any, demo: Demo, respond: Any) -> None:
    from .video import DEFAULT_TEMPORAL_STRENGTH

    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(
                label="Video (MP4, MOV, MKV, WebM, AVI)", type="filepath", file_count="single", elem_id="video-upload"
            )
        with gr.Column(scale=1):
            model = _model_choice(gr, demo, "video-model")
            saturation = _saturation_slider(gr, demo, "video-saturation")
            strength = gr.Slider(
                0.0, 1.0, value=DEFAULT_TEMPORAL_STRENGTH, step=0.05, label="Temporal strength",
                elem_id="video-strength", info="how much each frame's colour follows the previous frames' (0: none)",
            )  # fmt: skip
            recolor = gr.Checkbox(False, label="Recolor videos that already have colour", elem_id="video-recolor")
    status = gr.Markdown(
        "Upload a video; it is colorized at the model's working size, frame by frame, and kept steady along "
        "the motion.", elem_id="video-status", latex_delimiters=[],
    )  # fmt: skip
    output = gr.Video(label="Colour", interactive=False, format=None, elem_id="video-colour")
    download = gr.DownloadButton(
        "Download the colour video (.mp4)", interactive=False, variant="primary", elem_id="video-download"
    )
    inputs = [upload, model, saturation, recolor, strength]
    outputs = [output, download, status]
    for event in (upload.change, model.change, saturation.release, strength.release, recolor.change):
        event(respond, inputs, outputs, concurrency_limit=1, concurrency_id="colorize", show_progress="minimal")


def launch(
    demo: Demo,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    block: bool = True,
    quiet: bool = False,
) -> Any:
    """Serve :func:`build_app`'s page on ``host``:``port``; returns the ``gradio.Blocks`` (running in a
    thread when ``block`` is False: stop it with its ``close()``)."""
    gr = import_gradio()
    app = build_app(demo)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=not block,
        quiet=quiet,
        show_error=False,  # errors reach the page as messages from respond(), never Gradio's trace text
        max_file_size=demo.max_upload_bytes,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=["settings"],
        theme=_theme(gr),
    )
    return app


def load_models(specs: Sequence[str | None], loader: Any) -> dict[str, Any]:
    """Label -> model for the bundled model (None) and each ``--model`` value, in order, without
    duplicates; ``loader(spec)`` loads one (the CLI passes its own loader, which reports failures)."""
    models: dict[str, Any] = {}
    for spec in specs:
        label = BUNDLED_MODEL if spec is None else str(spec)
        if label not in models:
            models[label] = loader(spec)
    return models

