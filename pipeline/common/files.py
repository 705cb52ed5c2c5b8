"""Folders the pipeline creates for itself, readable by their owner only unless asked otherwise.

Run parameters, rejected rows, predictions and the SQLite database may be private, so the working
tree (``[overnight] data_root``) is created with mode 0o700: whatever is later written under it
with the usual umask stays out of other users' reach, because they cannot enter the folder.
Folders that already exist are never touched: a team that shares a data folder sets its mode
once, and the pipeline respects it.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "ensure_dir", "ensure_private_dir", "file_sha256", "sync_directory", "sync_tree"]

PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: str | Path) -> Path:
    """Create ``path`` and its missing parents, each new one with mode 0o700; return the path.

    Only folders this call creates get the mode (explicitly, whatever the umask); existing
    folders keep theirs. Safe when another process creates the same folder at the same time.

    Raises:
        NotADirectoryError: ``path`` or one of its parents exists and is not a folder.
        OSError: a folder cannot be created (permissions, read-only file system).
    """
    return ensure_dir(path, private=True)


def ensure_dir(path: str | Path, *, private: bool) -> Path:
    """Create ``path`` and its missing parents: 0o700 when ``private``, else as the umask says."""
    path = Path(path)
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        if folder.exists() or folder.is_symlink():
            raise _not_a_folder(folder)
        missing.append(folder)
    for folder in reversed(missing):  # outermost first
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE if private else 0o777)
        except FileExistsError:
            if not folder.is_dir():
                raise _not_a_folder(folder) from None
            continue  # another process made it first: its mode is its business
        if private:
            # mkdir's mode is filtered by the umask (077 would be fine, 0277 would not be).
            os.chmod(folder, PRIVATE_DIR_MODE)
    return path


def _not_a_folder(path: Path) -> NotADirectoryError:
    # errno, strerror and filename set, as the OS would: callers print "strerror: filename".
    return NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(path))


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def sync_tree(root: Path) -> None:
    """fsync every file and folder under root, root included."""
    for folder, _folders, files in os.walk(root):
        for name in files:
            descriptor = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        sync_directory(Path(folder))


def sync_directory(path: Path) -> None:
    """fsync a folder: makes the creation and renaming of its entries durable."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
