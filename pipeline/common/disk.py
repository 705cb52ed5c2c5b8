"""Free space: checked before large writes whose size is known, and named when a write runs out.

A full disk must end a run with one line naming the path and the space it needed, never with a
crash inside a library (HDF5 has been seen to segfault on a full disk) or a file left half
written for the next run to choke on.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

from pipeline.common.formatting import format_bytes
from pipeline.errors import DataError

logger = logging.getLogger(__name__)

MARGIN = 1 << 20  # bytes kept free beyond an estimate: file systems need room for their own books


class DiskFull(DataError):
    """Not enough free space for a write; the message names the path and the space needed."""


def require_free(path: str | Path, needed: int, what: str) -> None:
    """Raise DiskFull when the disk holding `path` has less than `needed` bytes (plus a margin) free.

    Args:
        what: the thing about to be written, for the message ("the training checkpoint").
    """
    free = free_bytes(path)
    if free < needed + MARGIN:
        raise DiskFull(
            f"not enough space for {what} in {path}: about {format_bytes(needed + MARGIN)} needed, "
            f"{format_bytes(free)} free on its disk; free some space and run the same command again"
        )


def free_bytes(path: str | Path) -> int:
    """Free bytes on the disk holding `path` (or its nearest existing parent)."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


FULL_WORDS = ("No space left on device", "errno = 28", "database or disk is full")


def is_disk_full(error: BaseException) -> bool:
    """Whether an error, or one it was raised from, is the system's "no space left on device"."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(words in str(error) for words in FULL_WORDS):
            return True  # h5py, SQLite and others report it in their message only
        error = error.__cause__ or error.__context__
    return False


def disk_full(error: BaseException, where: str | Path) -> DiskFull:
    """A DiskFull naming the file the system could not write (or `where`) and the space left there."""
    path = getattr(error, "filename", None) or where
    return DiskFull(
        f"the disk is full writing {path} ({format_bytes(free_bytes(path))} free); free some space and run again"
    )


def write_cache(path: Path, text: str) -> None:
    """Write a cache file atomically (beside, then renamed), or skip it with a warning on a full disk.

    A cache only saves time: a completeness check must not fail, nor leave a temporary file
    behind, because there was no room to keep one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if not is_disk_full(error):
            raise
        logger.warning("%s not updated: %s", path, disk_full(error, path))
