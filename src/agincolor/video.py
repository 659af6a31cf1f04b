"""Video colorization: frames streamed through any runner, chroma kept steady from frame to frame.

    from agincolor import Colorizer
    Colorizer.from_pretrained().colorize_video("old_film.mp4", "film_colour.mp4")

Three parts, each usable on its own:

* :class:`TemporalStabilizer` works on numpy arrays at the network's working size. Each frame's predicted
  CIELAB chroma (a*, b*) is blended with the previous output's, carried along the motion between the two
  frames (dense optical flow, OpenCV's DIS, on exposure-normalised gray). The blend weight is
  ``temporal_strength`` times a per-pixel confidence that drops where the motion estimate fails:
  where forward and backward flow disagree, where the warped previous frame does not match the current
  one, and where the motion comes from outside the picture. A recurrent blend is an exponential average
  along motion trajectories, so colour that jumps between frames settles while colour that the picture
  itself changes follows it.
* :class:`CutDetector` says when a frame starts a new shot, so that nothing is carried over a cut. It
  compares small thumbnails after normalising exposure (their ranks), so the exposure flicker of old
  film is not a cut.
* :class:`FrameColorizer` turns frames into colour frames: :mod:`agincolor.image_processor` prepares each
  frame (its CIELAB lightness at full size, the network's gray input at the working size), the runner's
  network predicts chroma, the stabiliser reconciles it, and image_processor's join puts it back with the
  frame's own lightness. Lightness is never smoothed: every output frame has its input's L*, as a photo
  does. With a look-ahead of k frames (files: :data:`DEFAULT_LOOKAHEAD`) each frame also takes in the
  next k frames' stabilised chroma, carried back along the same trusted motion, and comes out k frames late.

:func:`colorize_video_file` reads and writes files with PyAV (FFmpeg), one batch of frames at a time,
so memory does not grow with the clip's length. Resolution, timestamps (variable frame rates included),
display rotation and audio are kept. Needs the ``video`` extra (``pip install "agincolor[video]"``); this
module imports neither PyAV nor OpenCV until they are used.
"""

from __future__ import annotations

import contextlib
import errno
import math
import numbers
import os
import secrets
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from . import image_processor as ip
from ._files import move_into_place

__all__ = [
    "CODECS",
    "DEFAULT_LOOKAHEAD",
    "DEFAULT_TEMPORAL_STRENGTH",
    "VIDEO_SUFFIXES",
    "CutDetector",
    "FrameColorizer",
    "TemporalStabilizer",
    "VideoReadError",
    "VideoResult",
    "colorize_video_file",
    "is_video",
]

#: Suffixes of the video files a folder is searched for, and that a video output may have.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
#: Video codecs an output can have: name -> (FFmpeg encoder, what ``quality`` means).
CODECS = {
    "h264": ("libx264", "CRF, 0 (lossless) to 51; lower is better"),
    "vp9": ("libvpx-vp9", "CRF, 0 to 63; lower is better"),
    "ffv1": ("ffv1", "ignored: always lossless RGB"),
}
_DEFAULT_QUALITY = {"h264": 18, "vp9": 30, "ffv1": 0}
_QUALITY_RANGE = {"h264": 51, "vp9": 63, "ffv1": 0}
#: Audio encoders tried, in order, when the output container cannot take the input's audio as it is.
_AUDIO_ENCODERS = ("aac", "libopus", "libvorbis", "mp3")

#: ``temporal_strength`` default, chosen with ``benchmarks/video_flicker.py`` (see README.md, "Video").
DEFAULT_TEMPORAL_STRENGTH = 0.95
#: Frames a file's colorization looks ahead (``lookahead``), chosen with the benchmark like the strength.
DEFAULT_LOOKAHEAD = 2
_VIDEO_EXTRA_HINT = 'video colorization needs the video extra: pip install "agincolor[video]"'


class VideoReadError(ip.ImageReadError):
    """A video file is missing, not a video, or cannot be decoded at all."""


def _import_av() -> Any:
    try:
        import av
    except ImportError as err:
        raise ImportError(f"{_VIDEO_EXTRA_HINT} (PyAV: {err})") from None
    return av


def _import_cv2() -> Any:
    try:
        import cv2
    except ImportError as err:
        raise ImportError(f"{_VIDEO_EXTRA_HINT} (OpenCV: {err})") from None
    return cv2


def is_video(path: str | os.PathLike[str]) -> bool:
    """True when ``path``'s suffix is one of :data:`VIDEO_SUFFIXES` (the file is not opened)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def check_temporal_strength(value: object) -> float:
    """``temporal_strength`` as a float in [0, 1] (None: :data:`DEFAULT_TEMPORAL_STRENGTH`); a ``ValueError``
    naming it otherwise."""
    if value is None:
        return DEFAULT_TEMPORAL_STRENGTH
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"temporal_strength must be a number in [0, 1] (0: frame by frame), got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------- cuts
def _thumbnail(gray: np.ndarray, side: int) -> np.ndarray:
    """(H, W) float -> area-averaged float32 thumbnail about ``side`` pixels on its long side."""
    cv2 = _import_cv2()
    h, w = gray.shape
    scale = side / max(h, w)
    size = (max(4, round(w * scale)), max(4, round(h * scale)))
    return cv2.resize(np.asarray(gray, dtype=np.float32), size, interpolation=cv2.INTER_AREA)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Each value's rank in [0, 1] (ties broken by position): invariant to any increasing tone curve."""
    flat = x.reshape(-1)
    r = np.empty(flat.size, dtype=np.float32)
    r[np.argsort(flat, kind="stable")] = np.linspace(0.0, 1.0, flat.size, dtype=np.float32)
    return r.reshape(x.shape)


class CutDetector:
    """Decide whether a frame starts a new shot, from the gray frames alone.

    Each frame is reduced to a thumbnail (``side`` pixels on its long side, slightly blurred) whose values
    are replaced by their ranks, which no change of exposure, contrast or tone curve alters: the flicker of
    old film leaves them as they were. Two shots of one scene keep their layout, so their rank thumbnails
    correlate; a cut to another scene breaks it. A frame is a cut when that correlation falls below
    ``threshold``, or below ``soft_threshold`` while the shape of the two frames' histograms (after
    removing mean and spread) changes by more than ``histogram_threshold`` (half the L1 distance). Fast
    motion lowers the correlation too; what a missed cut or a false one costs is small, because the
    stabiliser's confidence drops wherever the motion estimate fails.

    Args:
        side (int, default 32): thumbnail size, long side.
        threshold (float, default 0.45): rank correlation below which a frame is a cut.
        soft_threshold (float, default 0.75): rank correlation below which a histogram change makes a cut.
        histogram_threshold (float, default 0.3): change of the normalised histogram (0 to 1) that counts.
    """

    def __init__(
        self, side: int = 32, threshold: float = 0.45, soft_threshold: float = 0.75, histogram_threshold: float = 0.3
    ) -> None:
        if isinstance(side, bool) or not isinstance(side, int) or side < 8:
            raise ValueError(f"side must be an int >= 8, got {side!r}")
        self.side = side
        self.threshold = float(threshold)
        self.soft_threshold = float(soft_threshold)
        self.histogram_threshold = float(histogram_threshold)
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self._previous = None

    def _describe(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = _import_cv2()
        thumb = cv2.GaussianBlur(_thumbnail(gray, self.side), (3, 3), 0)
        ranks = _ranks(thumb)
        ranks -= ranks.mean()
        ranks /= max(float(np.linalg.norm(ranks)), 1e-6)
        z = (thumb - thumb.mean()) / max(float(thumb.std()), 1e-3)
        hist = np.histogram(np.clip(z, -3, 3), bins=24, range=(-3, 3))[0].astype(np.float32)
        return ranks, hist / max(float(hist.sum()), 1.0)

    def scores(self, gray: np.ndarray) -> tuple[float, float] | None:
        """(rank correlation, histogram change) between ``gray`` and the previous frame given; None for
        the first frame. The frame becomes the previous one."""
        current = self._describe(gray)
        previous, self._previous = self._previous, current
        if previous is None or previous[0].shape != current[0].shape:
            return None
        correlation = float((previous[0] * current[0]).sum())
        change = 0.5 * float(np.abs(previous[1] - current[1]).sum())
        return correlation, change

    def __call__(self, gray: np.ndarray) -> bool:
        """True when ``gray`` (H, W) starts a new shot (never for the first frame)."""
        s = self.scores(gray)
        if s is None:
            return False
        correlation, change = s
        return correlation < self.threshold or (correlation < self.soft_threshold and change > self.histogram_threshold)


# ----------------------------------------------------------------------------------- stabiliser
class TemporalStabilizer:
    """Reconcile each frame's chroma with the previous frames', along the motion between them.

    ``update(gray, ab)`` takes a frame's gray image and the chroma predicted for it, both at the working
    size, and returns the chroma to use: ``ab + w * (warped - ab)``, where ``warped`` is the previous
    output carried to this frame by optical flow. The weight ``w = min(n / (n + 1), temporal_strength)``,
    where ``n`` is the number of earlier frames carried to the pixel times the confidence in the motion:
    the plain mean of the frames seen so far (so a shot's first frame does not outweigh the others, and
    the mean's error is at most the frames' average error), then an exponential average. Confidence
    (per pixel, in [0, 1]) is the product of three terms: forward-backward consistency of the flow
    (``exp(-(e / fb_tolerance)^2)``, e in pixels), agreement of the warped previous gray with the current
    one after matching their exposure (tolerance scaled by the frame's typical warp error, so sensor noise
    is not taken for failure), and whether the pixel came from inside the previous frame. Flow is
    computed at most ``flow_side`` pixels on the long side. A cut (:class:`CutDetector`) starts afresh.

    With ``temporal_strength`` 0 the output is each frame's own prediction, exactly.

    Args:
        temporal_strength (float, default DEFAULT_TEMPORAL_STRENGTH): in [0, 1]; the weight of the
            previous frames where the motion is trusted (None: the default). The benchmark chose the default.
        cut_detector (CutDetector, default a new one): None keeps the default; pass your own to tune it.
        flow_side (int, default 192): long side of the images the flow is computed on.
        history_weight (float, default 1.0): how much each earlier frame counts against the current one
            while their mean is taken (above 1 holds colours steadier and follows the predictions less).
        fb_tolerance (float, default 1.0): forward-backward error, in flow pixels, at which confidence is 1/e.
    """

    def __init__(
        self,
        temporal_strength: float | None = DEFAULT_TEMPORAL_STRENGTH,
        *,
        cut_detector: CutDetector | None = None,
        flow_side: int = 192,
        fb_tolerance: float = 1.0,
        history_weight: float = 1.0,
    ) -> None:
        self.temporal_strength = check_temporal_strength(temporal_strength)
        if isinstance(flow_side, bool) or not isinstance(flow_side, int) or flow_side < 16:
            raise ValueError(f"flow_side must be an int >= 16, got {flow_side!r}")
        self.flow_side = flow_side
        self.fb_tolerance = float(fb_tolerance)
        if isinstance(history_weight, bool) or not isinstance(history_weight, numbers.Real) or not history_weight > 0:
            raise ValueError(f"history_weight must be a number > 0, got {history_weight!r}")
        self.history_weight = float(history_weight)
        self.cut_detector = cut_detector if cut_detector is not None else CutDetector()
        s = self.temporal_strength
        self._age_cap = np.float32(s / (1.0 - s) + 1.0) if s < 1 else np.float32(np.inf)
        self._flow: Any = None
        # (normalised gray u8 at flow size, output ab, frames behind each pixel)
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        #: Whether the cut detector found a cut before the last frame given to :meth:`update`.
        self.last_was_cut = False
        #: Mean confidence of the last frame (0 after a cut).
        self.last_confidence = 0.0
        #: For the last frame, the motion to it from the frame before, seen from that frame: where each
        #: pixel of the previous frame went (x, y at the working size) and the confidence in it; None when
        #: nothing was carried (first frame, cut, strength 0). :class:`FrameColorizer`'s look-ahead uses it.
        self.last_motion: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        """Forget the previous frames: the next frame starts afresh."""
        self._previous = None
        self.cut_detector.reset()

    def _flow_estimator(self) -> Any:
        if self._flow is None:
            cv2 = _import_cv2()
            self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
            # The preset stops at a quarter of the image's resolution, which loses small moving objects;
            # half resolution tracks them for about three times the (still small) cost.
            self._flow.setFinestScale(1)
        return self._flow

    def _flow_image(self, gray: np.ndarray) -> np.ndarray:
        """Gray at flow size, its exposure normalised (mean 128, spread 40), as uint8."""
        cv2 = _import_cv2()
        h, w = gray.shape
        if max(h, w) > self.flow_side:
            scale = self.flow_side / max(h, w)
            gray = cv2.resize(gray, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        gray = np.asarray(gray, dtype=np.float32)
        z = (gray - gray.mean()) * (40.0 / max(float(gray.std()), 1e-3)) + 128.0
        return np.clip(z, 0, 255).astype(np.uint8)

    def update(self, gray: np.ndarray, ab: np.ndarray, detail: np.ndarray | None = None) -> np.ndarray:
        """The chroma (2, h, w) float32 to join with this frame's lightness.

        Args:
            gray: (h, w) float in [0, 1], the network's input for this frame.
            ab: (2, h, w) float, the chroma predicted for it (same h, w).
            detail: the frame's gray at a larger size (its full size, say), to estimate the motion on
                (reduced to ``flow_side``): finer than the working size, so the motion is more precise.
        """
        ab = np.asarray(ab, dtype=np.float32)
        gray = np.asarray(gray, dtype=np.float32)
        if ab.ndim != 3 or ab.shape[0] != 2 or gray.shape != ab.shape[1:]:
            raise ValueError(f"expected gray (h, w) and ab (2, h, w) of the same size, got {gray.shape} and {ab.shape}")
        cut = self.cut_detector(gray)
        self.last_motion = None
        if self.temporal_strength == 0.0:
            self._previous = None
            self.last_was_cut, self.last_confidence = cut, 0.0
            return ab.copy()
        small = self._flow_image(gray if detail is None else np.asarray(detail, dtype=np.float32))
        previous = self._previous
        if previous is None or cut or previous[0].shape != small.shape or previous[1].shape != ab.shape:
            self._previous = (small, ab.copy(), np.ones(ab.shape[1:], np.float32))
            self.last_was_cut, self.last_confidence = cut, 0.0
            return ab.copy()
        confidence = self._confidence(previous[0], small, ab.shape[1:])
        warped = self._warp_back(np.concatenate([previous[1], previous[2][None]]), self._map)
        # n: how many earlier frames stand behind this pixel, as far as the motion is trusted. Until n
        # reaches the cap the blend is their plain mean (each frame counts once: the first frame of a shot
        # does not outweigh the rest), then an exponential average of weight temporal_strength.
        n = confidence * np.maximum(warped[2], 0.0) * self.history_weight  # cubic resampling can undershoot
        weight = np.minimum(n / (n + 1.0), self.temporal_strength)
        out = ab + weight[None] * (warped[:2] - ab)
        self._previous = (small, out, np.minimum(n + 1.0, self._age_cap))
        self.last_was_cut, self.last_confidence = False, float(confidence.mean())
        self.last_motion = self._forward
        return out

    def _confidence(self, before: np.ndarray, now: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Per-pixel trust in the motion from ``before`` to ``now``, at ``shape``; sets ``self._map``,
        where each pixel of ``now`` (at ``shape``) was in ``before``."""
        cv2 = _import_cv2()
        dis = self._flow_estimator()
        back = dis.calc(now, before, None)  # now -> before: where each current pixel was
        forth = dis.calc(before, now, None)
        fh, fw = now.shape
        gx, gy = np.meshgrid(np.arange(fw, dtype=np.float32), np.arange(fh, dtype=np.float32))
        mx, my = gx + back[..., 0], gy + back[..., 1]
        forth_at = cv2.remap(forth, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fb = np.hypot(back[..., 0] + forth_at[..., 0], back[..., 1] + forth_at[..., 1])
        # Half a pixel of disagreement is the estimator's own imprecision, not a failure: full trust up to it.
        conf = np.exp(-np.square(np.maximum(fb - 0.5, 0.0) / self.fb_tolerance))
        inside = (mx >= 0) & (mx <= fw - 1) & (my >= 0) & (my <= fh - 1)
        conf *= inside
        warped = cv2.remap(before, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        err = np.abs(cv2.GaussianBlur(warped, (5, 5), 0) - cv2.GaussianBlur(now.astype(np.float32), (5, 5), 0))
        # The typical error of a good warp (its median) is the noise floor: full trust up to twice that, then
        # falling off, so sensor noise is not taken for a failed motion estimate.
        floor = 2.0 * float(np.median(err))
        conf *= np.exp(-np.square(np.maximum(err - floor, 0.0) / max(6.0, floor)))
        # A pixel is trusted only if its neighbours are: confidence bleeds no colour across a failed edge.
        conf = cv2.erode(conf.astype(np.float32), np.ones((3, 3), np.uint8))
        h, w = shape
        if (fh, fw) != (h, w):
            conf = cv2.resize(conf, (w, h), interpolation=cv2.INTER_LINEAR)
            back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR) * np.array([w / fw, h / fh], np.float32)
            forth = cv2.resize(forth, (w, h), interpolation=cv2.INTER_LINEAR) * np.array([w / fw, h / fh], np.float32)
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            mx, my = gx + back[..., 0], gy + back[..., 1]
        conf = np.clip(conf, 0.0, 1.0)
        self._map = (mx, my)
        # The same motion seen from the previous frame, for a look-ahead: where each of its pixels went, and
        # the confidence of the current pixel it went to (0 where it left the picture).
        fx, fy = gx + forth[..., 0], gy + forth[..., 1]
        ahead = cv2.remap(conf, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        ahead *= (fx >= 0) & (fx <= w - 1) & (fy >= 0) & (fy <= h - 1)
        self._forward = (fx, fy, ahead)
        return conf

    @staticmethod
    def _warp_back(ab: np.ndarray, coords: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        cv2 = _import_cv2()
        mx, my = coords
        # Cubic: the previous output is resampled once a frame, and bilinear resampling would blur it a
        # little more every time.
        return np.stack([cv2.remap(c, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE) for c in ab])


# ----------------------------------------------------------------------------------- frames
class FrameColorizer:
    """Colorize consecutive frames of one clip with any runner's network, chroma stabilised over time.

    ``chroma`` is the runner's network as :mod:`agincolor.image_processor` defines it (gray (N, 1, h, w)
    in [0, 1] -> ab (N, 2, h, w), heatmap); :meth:`agincolor.Colorizer.frame_colorizer` and
    :meth:`agincolor.OnnxColorizer.frame_colorizer` make one. Frames are numpy arrays of one size:
    (H, W) or (H, W, 3), uint8 (or what :func:`~agincolor.image_processor.prepare_array` takes). Each is
    prepared by image_processor, its chroma predicted at the working size, reconciled by a
    :class:`TemporalStabilizer` and joined with the frame's own CIELAB lightness. State carries from one
    call of :meth:`colorize` to the next; :meth:`reset` starts afresh.

    With ``lookahead`` k > 0 a frame's chroma also takes in the next k frames': the stabilised chroma of
    frame t + k is carried back along the motion, frame by frame, to frame t, as far as the motion is
    trusted (not over a cut), so a frame's colour has as many frames behind it as frame t + k's and does not
    lag behind the predictions by those k frames. A frame then comes out k frames late: :meth:`colorize`
    returns the frames finished so far, oldest first (fewer than it was given, at first), and
    :meth:`finish` the ones still held at the end of the clip. Memory holds k frames' chroma, whatever
    the clip's length.

    Args:
        chroma: the network.
        working_size (int): the runner's working size.
        saturation (float, default 1.0): chroma scale, as for photos.
        temporal_strength (float, default DEFAULT_TEMPORAL_STRENGTH): 0 colours each frame on its own (None:
            the default).
        stabilizer (TemporalStabilizer, default None): one to use instead (then ``temporal_strength`` is its).
        lookahead (int, default 0): frames to look ahead (latency); files use DEFAULT_LOOKAHEAD.
        resample (str, default "bilinear"): PIL's filter that resizes frames to the working size (the
            runner's ``resample``).
        brightness (str, default "lightness"): what of each frame's brightness its output keeps exactly,
            "lightness" (CIELAB L*) or "luma" (BT.601; the runner's ``brightness``).
    """

    def __init__(
        self,
        chroma: ip.ChromaFn,
        *,
        working_size: int,
        saturation: float = 1.0,
        temporal_strength: float | None = DEFAULT_TEMPORAL_STRENGTH,
        stabilizer: TemporalStabilizer | None = None,
        lookahead: int = 0,
        resample: str = "bilinear",
        brightness: str = "lightness",
    ) -> None:
        if isinstance(lookahead, bool) or not isinstance(lookahead, numbers.Integral) or lookahead < 0:
            raise ValueError(f"lookahead must be an int >= 0 (frames), got {lookahead!r}")
        self.lookahead = int(lookahead)
        # Frames not yet given out: (prepared frame, stabilised chroma, motion to it from the frame before).
        self._held: list[tuple[ip.PreparedImage, np.ndarray, Any]] = []
        self.chroma = chroma
        self.working_size = working_size
        self.saturation = float(saturation)
        self.resample = ip.check_resample(resample)
        self.brightness = ip.check_brightness(brightness)
        self.stabilizer = stabilizer if stabilizer is not None else TemporalStabilizer(temporal_strength)
        #: Cuts found so far (frames that started afresh, the first frame not counted).
        self.cuts = 0

    def reset(self) -> None:
        """Start afresh: nothing is carried from the frames before to the next (frames still held by the
        look-ahead are kept; :meth:`finish` gives them)."""
        self.stabilizer.reset()

    def prepare(self, frame: np.ndarray) -> ip.PreparedImage:
        """image_processor's preparation of one frame (its lightness and the network's gray input)."""
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"frames must be numpy arrays, got {type(frame).__name__}")
        return ip.prepare_array(frame, what="video frame")

    def colorize(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Colour frames, uint8 (H, W, 3), for consecutive ``frames`` (one network batch)."""
        return self.colorize_prepared([self.prepare(f) for f in frames])

    def colorize_prepared(self, items: Sequence[ip.PreparedImage]) -> list[np.ndarray]:
        """As :meth:`colorize`, for frames already prepared (with :meth:`prepare`)."""
        if not items:
            return []
        shape = ip.working_shape(*items[0].gray.shape, self.working_size)
        for item in items:
            if item.gray.shape != items[0].gray.shape:
                raise ValueError(f"frames of one clip must share a size, got {items[0].gray.shape} and {item.gray.shape}")
        small = [ip.resize_gray(item.gray, shape, self.resample) for item in items]
        ab, _ = self.chroma(np.stack(small)[:, None])
        ab = np.asarray(ab, dtype=np.float32)
        if self.saturation != 1.0:
            ab = ab * np.float32(self.saturation)
        out = []
        for item, gray, chroma in zip(items, small, ab):
            steady = self.stabilizer.update(gray, chroma, item.gray)
            self.cuts += self.stabilizer.last_was_cut
            self._held.append((item, steady, self.stabilizer.last_motion))
            if len(self._held) > self.lookahead:
                out.append(self._give_oldest())
        return out

    def finish(self) -> list[np.ndarray]:
        """The frames still held by the look-ahead, oldest first (none with ``lookahead`` 0): call it at the
        end of the clip."""
        out = []
        while self._held:
            out.append(self._give_oldest())
        return out

    def _give_oldest(self) -> np.ndarray:
        cv2 = _import_cv2() if len(self._held) > 1 else None
        steady = self._held[-1][1]
        for j in range(len(self._held) - 2, -1, -1):
            own, motion = self._held[j][1], self._held[j + 1][2]
            if motion is None:  # a cut or a fresh start after frame j: nothing comes back over it
                steady = own
                continue
            fx, fy, trust = motion
            ahead = np.stack([cv2.remap(c, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for c in steady])
            steady = own + trust[None] * (ahead - own)
        item = self._held.pop(0)[0]
        return ip.join_lightness_and_chroma(item.lightness, steady, item.gray if self.brightness == "luma" else None)


# ----------------------------------------------------------------------------------- files
@dataclass
class VideoResult:
    """What :func:`colorize_video_file` did.

    source, output: the files (output is None when the video was skipped).
    frames: frames written (repeated ones included).
    repeated: frames that could not be decoded and were replaced by the previous one.
    audio: per audio stream, "copied", "re-encoded to <codec> (<why>)" or "dropped (<why>)".
    colour: the largest :func:`~agincolor.colour_measure` of the first frames (colour videos measure high).
    skipped_colour: True when the video already had colour and ``if_colour="skip"`` left it alone.
    cuts: scene cuts found (each started the stabiliser afresh).
    lost: undecodable packets before the first good frame, which had no frame to repeat.
    truncated: True when the file could not be read to its end (the frames before were written).
    """

    source: Path
    output: Path | None
    frames: int = 0
    repeated: int = 0
    audio: list[str] = field(default_factory=list)
    colour: float = 0.0
    skipped_colour: bool = False
    cuts: int = 0
    lost: int = 0
    truncated: bool = False


@dataclass
class _Frame:
    rgb: np.ndarray
    pts: int | None
    time_base: Fraction | None
    repeated: bool = False


def _open_input(av: Any, path: Path) -> Any:
    if not path.is_file():
        raise VideoReadError(f"video file {str(path)!r} does not exist" if not path.exists() else f"{str(path)!r} is not a file")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        raise VideoReadError(f"cannot open video file {str(path)!r}: {_one_line(err)}") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"{str(path)!r} has no video stream")
    return container


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _display_matrix(frame: Any) -> list[int] | None:
    """The frame's display matrix (rotation and flips) as 9 ints, or None."""
    for data in frame.side_data:
        if "DISPLAYMATRIX" in str(getattr(data, "type", "")):
            raw = np.frombuffer(bytes(data), dtype="<i4")
            return [int(v) for v in raw] if raw.size == 9 else None
    return None


def _decode(av: Any, container: Any, path: Path, counts: dict[str, Any], audio: list[Any]) -> Iterator[Any]:
    """Yield _Frame objects (video) and, for the audio streams in ``audio``, their packets, in file order.

    An undecodable video packet (or a frame the decoder marks corrupt) becomes a copy of the previous
    frame at the packet's timestamp, counted in ``counts["repeated"]``. Decoders put out frames in
    presentation order, later than their packets (B-frames), so a failed packet's time is held until the
    first frame after it comes out, and its repeat goes out just before that frame.
    """
    video = container.streams.video[0]
    # Slice threads only: with frame threads a decoder reports a bad packet a few packets late, which
    # hides which frame it was.
    video.thread_type = "SLICE"
    last: _Frame | None = None
    failed: list[int] = []  # timestamps of undecodable packets, not yet repeated

    def repeats_before(pts: float) -> Iterator[_Frame]:
        nonlocal last
        while failed and failed[0] < pts:
            when = failed.pop(0)
            if last is None:
                counts["lost"] += 1
                continue
            counts["repeated"] += 1
            counts["frames"] += 1
            last = _Frame(last.rgb, when, last.time_base, True)
            yield last

    demux = container.demux(video, *audio)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            break
        except (av.FFmpegError, OSError) as err:
            if last is None:
                raise VideoReadError(f"cannot read video file {str(path)!r}: {_one_line(err)}") from None
            counts["truncated"] = 1  # the rest of the file cannot be demuxed: stop at the last good frame
            break
        if packet.stream.type != "video":
            if packet.size:
                yield packet
            continue
        try:
            frames = packet.decode()
        except (av.FFmpegError, ValueError):
            if packet.size and packet.pts is not None:
                failed.append(packet.pts)
                failed.sort()
            elif packet.size:
                counts["lost"] += 1
            continue
        for frame in frames:
            if counts["frames"] == 0:
                counts["matrix"] = _display_matrix(frame)
            pts = frame.pts
            if pts is not None:
                yield from repeats_before(pts)
            if frame.is_corrupt and last is not None:
                counts["repeated"] += 1
                current = _Frame(last.rgb, pts, frame.time_base, True)
            else:
                current = _Frame(frame.to_ndarray(format="rgb24"), pts, frame.time_base)
            counts["frames"] += 1
            last = current
            yield current
    yield from repeats_before(math.inf)


def _check_output(src: Path, dst: Path, codec: str, quality: int | None, overwrite: bool) -> tuple[str, int]:
    suffix = dst.suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"video output {str(dst)!r} must end in one of {', '.join(VIDEO_SUFFIXES)}")
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
    if codec == "ffv1" and suffix not in (".mkv", ".avi"):
        raise ValueError(f"the lossless codec ffv1 needs a .mkv or .avi output, not {str(dst)!r}")
    if suffix == ".webm" and codec != "vp9":
        raise ValueError(f"a .webm output takes only the vp9 codec, not {codec!r}")
    if quality is None:
        quality = _DEFAULT_QUALITY[codec]
    if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= _QUALITY_RANGE[codec]:
        raise ValueError(f"quality for {codec} must be an int in [0, {_QUALITY_RANGE[codec]}] ({CODECS[codec][1]}), got {quality!r}")
    if dst.is_dir():
        raise ValueError(f"video output {str(dst)!r} is a folder")
    if src.exists() and dst.exists() and os.path.samefile(src, dst):
        raise ValueError(f"video output {str(dst)!r} would replace its input")
    if dst.exists() and not overwrite:
        raise FileExistsError(errno.EEXIST, "exists; pass overwrite=True to replace it", str(dst))
    return _FORMATS[suffix], quality


def default_codec(dst: str | os.PathLike[str]) -> str:
    """The codec an output gets when none is asked for: vp9 in .webm, h264 elsewhere."""
    return "vp9" if Path(dst).suffix.lower() == ".webm" else "h264"


class _Writer:
    """The output file: a video stream set up from the first frame, and the audio streams."""

    def __init__(
        self, av: Any, tmp: Path, fmt: str, codec: str, quality: int, first: _Frame, source: Any,
        matrix: list[int] | None, audio_in: Sequence[Any], notes: list[str],
    ) -> None:  # fmt: skip
        self.av = av
        self.out = av.open(str(tmp), mode="w", format=fmt)
        h, w = first.rgb.shape[:2]
        rate = source.average_rate or source.guessed_rate or Fraction(25)
        encoder, options = CODECS[codec][0], {}
        if codec == "h264":
            options = {"crf": str(quality), "preset": "medium"}
        elif codec == "vp9":
            options = {"crf": str(quality), "b": "0", "row-mt": "1"}
        else:
            options = {"level": "3", "slicecrc": "1"}
        stream = self.out.add_stream(encoder, rate=rate, options=options)
        stream.width, stream.height = w, h
        if codec == "ffv1":
            self.pix_fmt = "bgr0"  # RGB as it is (8 bits a channel, padded): lossless, and no colour matrix to tag
        else:
            # 4:2:0 needs even sides; odd ones keep their size in 4:4:4.
            self.pix_fmt = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
        stream.pix_fmt = self.pix_fmt
        if source.time_base is not None:
            stream.codec_context.time_base = source.time_base
        cc = stream.codec_context
        # Tagged as what the frames are: sRGB (BT.709 primaries, sRGB transfer); Y'CbCr in BT.709, TV range.
        cc.color_primaries, cc.color_trc = 1, 13
        cc.colorspace, cc.color_range = (0, 2) if codec == "ffv1" else (1, 1)
        if matrix is not None and any(matrix[i] != v for i, v in enumerate((65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30))):
            stream.set_display_matrix(matrix)
        if source.sample_aspect_ratio:
            stream.sample_aspect_ratio = source.sample_aspect_ratio
        self.video = stream
        self.audio: dict[int, tuple[Any, Any | None]] = {}
        for a in audio_in:
            name = a.codec_context.name
            if name in self.out.supported_codecs:
                self.audio[a.index] = (self.out.add_stream_from_template(a), None)
                notes.append("copied")
                continue
            encoder_name = next((e for e in _AUDIO_ENCODERS if e in self.out.supported_codecs and e in av.codecs_available), None)
            if encoder_name is None:
                notes.append(f"dropped ({fmt} takes no audio codec available here)")
                continue
            rate = a.codec_context.sample_rate or 48000
            if encoder_name == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                rate = 48000
            out_stream = self.out.add_stream(encoder_name, rate=rate)
            # By channel count: a file's layout may have no channel order, which encoders refuse.
            out_stream.layout = "mono" if a.codec_context.channels == 1 else "stereo"
            self.audio[a.index] = (out_stream, a)
            notes.append(f"re-encoded to {encoder_name} ({fmt} cannot hold {name})")

    def write_frame(self, rgb: np.ndarray, frame: _Frame) -> None:
        vf = self.av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self.pix_fmt == "bgr0":
            vf = vf.reformat(format="bgr0")
        else:
            vf = vf.reformat(format=self.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
        vf.pts = frame.pts
        if frame.time_base is not None:
            vf.time_base = frame.time_base
        for packet in self.video.encode(vf):
            self.out.mux(packet)

    def write_audio(self, packet: Any) -> None:
        target = self.audio.get(packet.stream.index)
        if target is None:
            return
        stream, decoder = target
        if decoder is None:
            packet.stream = stream
            self.out.mux(packet)
            return
        for frame in decoder.decode(packet):
            frame.pts = None  # the encoder counts samples from the start
            for p in stream.encode(frame):
                self.out.mux(p)

    def close(self) -> None:
        for packet in self.video.encode(None):
            self.out.mux(packet)
        for stream, decoder in self.audio.values():
            if decoder is not None:
                for frame in decoder.decode(None):
                    frame.pts = None
                    for p in stream.encode(frame):
                        self.out.mux(p)
                for p in stream.encode(None):
                    self.out.mux(p)
        self.out.close()


def _estimated_frames(stream: Any) -> int | None:
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base and stream.average_rate:
        return max(1, round(float(stream.duration * stream.time_base * stream.average_rate)))
    return None


def colorize_video_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    chroma: ip.ChromaFn,
    *,
    working_size: int,
    saturation: float = 1.0,
    temporal_strength: float = DEFAULT_TEMPORAL_STRENGTH,
    codec: str | None = None,
    quality: int | None = None,
    batch_size: int = 4,
    overwrite: bool = False,
    if_colour: str = "warn",
    progress: Callable[[int, int | None], None] | None = None,
    resample: str = "bilinear",
    brightness: str = "lightness",
) -> VideoResult:
    """Colorize the video file ``src`` into ``dst`` with the network ``chroma``; see the module docstring.

    The output has the input's resolution, timestamps (so frame rate, variable rates and duration),
    display rotation and sample aspect ratio; its frames are tagged BT.709 / sRGB. Audio streams are
    copied when ``dst``'s container takes their codec, else re-encoded (AAC where the container allows it)
    and said so in the result. It is written to a temporary file beside ``dst`` and renamed at the end:
    a failure leaves nothing under ``dst``, and without ``overwrite`` an existing ``dst`` is never replaced.

    Args:
        codec: "h264" (default; "vp9" for .webm) or "ffv1" (lossless RGB, .mkv or .avi).
        quality: the codec's CRF (h264 default 18, vp9 30); ignored by ffv1.
        batch_size: frames per network call (memory stays that of one batch).
        if_colour: what to do when the first frames already have colour: "warn" (a ``UserWarning`` naming
            the file, then colorize), "skip" (write nothing; ``skipped_colour`` is set) or "ignore".
        progress: called as ``progress(frames_done_now, estimated_total)`` after each batch.
        resample: PIL's filter that resizes frames to the working size (the runner's ``resample``).
        brightness: "lightness" or "luma", what of each frame's brightness the output keeps (the runner's).

    Raises:
        VideoReadError: ``src`` cannot be opened or holds no decodable video (naming the file).
        FileExistsError: ``dst`` exists and ``overwrite`` is False.
        ValueError: a bad option, or ``dst`` has no video suffix.
        ImportError: the ``video`` extra is missing.
    """
    src, dst = Path(src), Path(dst)
    codec = default_codec(dst) if codec is None else codec
    fmt, quality = _check_output(src, dst, codec, quality, overwrite)
    strength = check_temporal_strength(temporal_strength)
    ip.check_resample(resample)
    ip.check_brightness(brightness)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if if_colour not in ("warn", "skip", "ignore"):
        raise ValueError(f"if_colour must be 'warn', 'skip' or 'ignore', got {if_colour!r}")
    av = _import_av()
    _import_cv2()
    result = VideoResult(src, None)
    container = _open_input(av, src)
    tmp: Path | None = None
    writer: _Writer | None = None
    try:
        vstream = container.streams.video[0]
        audio_in = [a for a in container.streams.audio if a.codec_context is not None]
        total = _estimated_frames(vstream)
        counts = {"frames": 0, "repeated": 0, "lost": 0, "truncated": 0, "matrix": None}
        frames = FrameColorizer(
            chroma, working_size=working_size, saturation=saturation, temporal_strength=strength,
            lookahead=DEFAULT_LOOKAHEAD if strength > 0 else 0, resample=resample, brightness=brightness,
        )  # fmt: skip
        pending_audio: list[Any] = []
        batch: list[_Frame] = []
        waiting: list[_Frame] = []  # frames given to the colorizer, not yet written (its look-ahead)

        def flush() -> None:
            nonlocal writer, tmp
            prepared = [frames.prepare(f.rgb) for f in batch]
            if writer is None:
                result.colour = max(p.colour for p in prepared)
                if result.colour > ip.COLOUR_THRESHOLD:
                    if if_colour == "skip":
                        result.skipped_colour = True
                        raise _Skip
                    if if_colour == "warn":
                        warnings.warn(
                            f"{str(src)!r} already has colour (colour_measure {result.colour:.1f} > "
                            f"{ip.COLOUR_THRESHOLD:g}); its colours are replaced by ones predicted from its lightness",
                            UserWarning,
                            stacklevel=4,
                        )
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(f".{dst.stem}.{secrets.token_hex(4)}.tmp{dst.suffix}")
                writer = _Writer(av, tmp, fmt, codec, quality, batch[0], vstream, counts["matrix"], audio_in, result.audio)  # type: ignore[arg-type]
                for packet in pending_audio:
                    writer.write_audio(packet)
                pending_audio.clear()
            waiting.extend(batch)
            for rgb in frames.colorize_prepared(prepared):
                writer.write_frame(rgb, waiting.pop(0))
            result.frames += len(batch)
            if progress is not None:
                progress(len(batch), total)
            batch.clear()

        try:
            for item in _decode(av, container, src, counts, audio_in):
                if isinstance(item, _Frame):
                    batch.append(item)
                    if len(batch) >= batch_size:
                        flush()
                elif writer is None:
                    pending_audio.append(item)
                else:
                    writer.write_audio(item)
            if batch:
                flush()
            if writer is not None:
                for rgb in frames.finish():
                    writer.write_frame(rgb, waiting.pop(0))
        except _Skip:
            return result
        if writer is None:
            raise VideoReadError(f"video file {str(src)!r} has no decodable frame")
        writer.close()
        result.repeated, result.lost = counts["repeated"], counts["lost"]
        result.truncated = bool(counts["truncated"])
        result.cuts = frames.cuts
        move_into_place(tmp, dst, overwrite)  # type: ignore[arg-type]
        result.output = dst
        return result
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.out.close()
        raise
    finally:
        container.close()
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


class _Skip(Exception):
    """The video already has colour and is left alone."""


def iter_frames(path: str | os.PathLike[str]) -> Iterable[tuple[np.ndarray, float | None]]:
    """Decode a video file's frames as uint8 RGB (H, W, 3) with their time in seconds (for checks and tests)."""
    av = _import_av()
    container = _open_input(av, Path(path))
    try:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24"), (float(frame.time) if frame.time is not None else None)
    finally:
        container.close()
