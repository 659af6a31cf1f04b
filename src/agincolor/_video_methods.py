"""The video methods of both runners, :class:`~agincolor.Colorizer` and :class:`~agincolor.OnnxColorizer`.

Torch-free, as the ONNX runner must be. A runner supplies ``working_size``, ``_run_options`` (the checked
saturation and temperature of one call) and ``_chroma`` (gray ``(N, 1, h, w)`` float32 in [0, 1] ->
``(ab, heatmap)``); the work itself is :mod:`agincolor.video`'s, imported only when used, since it needs
the ``video`` extra.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


class VideoMethods:
    """``frame_colorizer`` and ``colorize_video`` over a runner's ``_chroma``."""

    working_size: int

    def _run_options(self, saturation: float | None, temperature: float | None) -> tuple[float, float | None]:
        raise NotImplementedError

    def _chroma(self, gray: np.ndarray, temperature: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def frame_colorizer(
        self,
        *,
        temporal_strength: float | None = None,
        saturation: float | None = None,
        temperature: float | None = None,
        lookahead: int = 0,
    ) -> Any:
        """A :class:`agincolor.video.FrameColorizer` running this model: colour frames of one clip (numpy
        arrays), chroma stabilised over time (``temporal_strength`` in [0, 1], 0: frame by frame). With
        ``lookahead`` k > 0 frames come out k frames late and steadier; call its ``finish()`` at the end."""
        from . import video

        saturation, temperature = self._run_options(saturation, temperature)
        return video.FrameColorizer(
            lambda gray: self._chroma(gray, temperature), working_size=self.working_size, saturation=saturation,
            temporal_strength=temporal_strength, lookahead=lookahead, resample=self.resample,
            brightness=self.brightness,
        )  # fmt: skip

    def colorize_video(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        temporal_strength: float | None = None,
        codec: str | None = None,
        quality: int | None = None,
        batch_size: int = 4,
        saturation: float | None = None,
        temperature: float | None = None,
        overwrite: bool = False,
        progress: Any = None,
    ) -> Any:
        """Colorize the video file ``src`` into ``dst`` (.mp4, .m4v, .mov, .mkv, .webm or .avi); needs the
        ``video`` extra. Frames are streamed (memory does not grow with the clip), their chroma is reconciled
        with the previous frames' along the motion (``temporal_strength`` in [0, 1], 0: frame by frame;
        scene cuts start afresh) and joined with each frame's own lightness. Resolution, timestamps,
        rotation and audio are kept; ``codec`` is "h264" (CRF ``quality``, default 18), "vp9" or "ffv1"
        (lossless, .mkv/.avi). A video already in colour is recoloured with a ``UserWarning`` naming it.
        ``dst`` is written under a temporary name and renamed at the end; an existing ``dst`` is replaced
        only with ``overwrite``. Returns a :class:`agincolor.video.VideoResult`; see
        :func:`agincolor.video.colorize_video_file` for ``progress`` and the errors raised.
        """
        from . import video

        saturation, temperature = self._run_options(saturation, temperature)
        return video.colorize_video_file(
            src, dst, lambda gray: self._chroma(gray, temperature), working_size=self.working_size,
            saturation=saturation, temporal_strength=temporal_strength, codec=codec, quality=quality,
            batch_size=batch_size, overwrite=overwrite, progress=progress, resample=self.resample,
            brightness=self.brightness,
        )  # fmt: skip
