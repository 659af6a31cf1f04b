"""Publishing a finished output file without replacing one that appeared meanwhile (CLI and video)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def move_into_place(tmp: Path, dst: Path, overwrite: bool) -> None:
    """Rename the finished temporary file ``tmp`` to ``dst``; without ``overwrite``, never replace a file
    that appeared meanwhile (a hard link fails where a rename would replace). ``tmp`` may remain: the caller
    removes it."""
    if overwrite:
        os.replace(tmp, dst)
        return
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "appeared while colorizing; not overwritten", str(dst)) from None
    except OSError:  # a file system without hard links
        if dst.exists():
            raise FileExistsError(errno.EEXIST, "appeared while colorizing; not overwritten", str(dst)) from None
        os.replace(tmp, dst)
