"""Folders and files the pipeline creates for itself, readable by their owner only unless asked otherwise.

Run parameters, rejected rows, predictions and the SQLite database may be private, so the working
tree (``[overnight] data_root``) is created with mode 0o700: whatever is later written under it
with the usual umask stays out of other users' reach, because they cannot enter the folder.
Folders that already exist are never touched: a team that shares a data folder sets its mode
once, and the pipeline respects it. Logs, lock files and exports get 0o600 themselves
(``open_for_append``, ``write_file``): they may sit in a folder others can enter, and logs hold
data values. A file that already exists keeps its mode, as a folder does; a replaced one does not.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import TextIO

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "ensure_dir",
    "ensure_private_dir",
    "file_sha256",
    "open_for_append",
    "sync_directory",
    "sync_tree",
    "write_file",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


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
            if folder.is_dir():
                break  # another process made it between the two looks (Luigi's forked workers do)
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


def open_for_append(path: str | Path, *, private: bool) -> TextIO:
    """Open a log or a lock file for reading and appending, creating it 0o600 when ``private``.

    Only a file this call creates gets the mode (explicitly, whatever the umask); an existing file
    keeps its own. Without ``private`` a new file's mode is the umask's.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags | os.O_CREAT | os.O_EXCL, _file_mode(private))
    except FileExistsError:
        descriptor = os.open(path, flags)
    else:
        if private:
            os.fchmod(descriptor, PRIVATE_FILE_MODE)  # the umask filtered open's mode
    return os.fdopen(descriptor, "a+")


def write_file(path: str | Path, data: bytes, *, private: bool, replace: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: a new file beside it, then a rename; return the path.

    Never through a symbolic link: a link at ``path`` is refused even with ``replace`` (the rename
    would replace the link, but whoever made it meant its target, which is not ours to write). An
    existing file is kept unless ``replace``, also one that appears while this writes. The file is
    0o600 when ``private``, else the umask's, whatever a replaced file's mode was. Missing folders
    are created, 0o700 when ``private``.

    Raises:
        FileExistsError: ``path`` exists and ``replace`` is false.
        OSError: ``path`` is a symbolic link or not a regular file, or its folder cannot be made or
            written (NotADirectoryError, PermissionError): ``strerror`` and ``filename`` say which.
    """
    path = Path(path)
    _refuse_existing(path, replace=replace)
    ensure_dir(path.parent, private=private)
    temporary = _write_temporary(path, data, private=private)
    try:
        if replace:
            os.replace(temporary, path)  # a link made meanwhile is replaced itself, never its target
        else:
            _rename_no_clobber(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    sync_directory(path.parent)
    return path


def _refuse_existing(path: Path, *, replace: bool) -> None:
    try:
        found = path.lstat()  # lstat: a link is seen as a link, not as what it points to
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there; ensure_dir names a file in the folder's way
    if stat.S_ISLNK(found.st_mode):
        raise OSError(
            errno.ELOOP, "is a symbolic link, never written through (remove it or choose another path)", str(path)
        )
    if not stat.S_ISREG(found.st_mode):
        raise OSError(errno.EEXIST, "exists and is not a regular file", str(path))
    if not replace:
        raise FileExistsError(errno.EEXIST, "exists", str(path))


def _write_temporary(path: Path, data: bytes, *, private: bool) -> Path:
    """A new file in ``path``'s folder holding ``data``, synced; O_EXCL never opens what is there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            descriptor = os.open(temporary, flags, _file_mode(private))
            break
        except FileExistsError:
            continue  # 48 random bits met a leftover: take another name
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if private:
                os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _rename_no_clobber(temporary: Path, path: Path) -> None:
    """Move ``temporary`` to ``path`` unless something is there: a hard link fails if it is."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        # No hard links on this file system (FAT, some network shares): check, then rename.
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
        os.replace(temporary, path)


def _file_mode(private: bool) -> int:
    return PRIVATE_FILE_MODE if private else 0o666  # open() takes the umask off the latter


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
