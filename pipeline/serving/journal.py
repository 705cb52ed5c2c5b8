"""The server's journal: every answered prediction is on disk before its answer leaves.

A request is acknowledged only after its rows are appended here and fsynced (one write and one
fsync for all the requests scored together). A loader (pipeline/serving/loader.py) moves the
journal into SQL a segment at a time and removes each segment once its rows are committed. So a
database that is down costs nothing but backlog, and a server killed with SIGKILL loses nothing
it acknowledged: the next start loads what is left. A segment loaded twice stores its rows once
(pipeline/store/online_log.py replaces rows by key).

Segments are JSON lines, named `<state>-<time>-<owner>-<n>.jsonl`:
- `active`: the one segment a process appends to;
- `ready`: closed, waiting to load;
- `loading`: claimed by one loader (a rename: two processes never load the same segment).

Each process (each `--workers` worker) is an owner with a lock file held while it lives; the
segments of an owner whose lock is free (killed, crashed) are made `ready` by whoever looks next.
A last line cut short by a kill was never acknowledged (its fsync did not return): it is skipped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pipeline.common.files import ensure_dir, sync_directory

__all__ = ["Journal"]

logger = logging.getLogger(__name__)

ACTIVE, READY, LOADING = "active", "ready", "loading"
SUFFIX = ".jsonl"


class Journal:
    """Append-only segments in one folder, shared safely by the processes of one server."""

    def __init__(self, folder: str | Path, *, private: bool = False):
        self.folder = ensure_dir(folder, private=private)
        self.owner = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.private = private
        self._lock = threading.Lock()
        self._file = None
        self._active: Path | None = None
        self._rows = 0  # in the active segment
        self._count = 0
        self._owner_lock = open(self.folder / f"owner-{self.owner}.lock", "w")  # noqa: SIM115 - held for life
        fcntl.flock(self._owner_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    # --- writing --------------------------------------------------------------------------------

    def append(self, records: list[dict]) -> None:
        """Write the records as JSON lines and fsync: once this returns they survive a crash."""
        data = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records).encode()
        with self._lock:
            if self._file is None:
                self._open()
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._rows += len(records)

    def _open(self) -> None:
        self._count += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self._active = self.folder / f"{ACTIVE}-{stamp}-{self.owner}-{self._count}{SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        self._file = os.fdopen(os.open(self._active, flags, 0o600 if self.private else 0o644), "ab")
        sync_directory(self.folder)

    def rotate(self) -> None:
        """Close the active segment, if it holds rows: it is `ready` to load."""
        with self._lock:
            if self._file is None or not self._rows:
                return
            self._file.close()
            os.rename(self._active, _renamed(self._active, READY))
            sync_directory(self.folder)
            self._file, self._active, self._rows = None, None, 0

    def close(self) -> None:
        """Rotate, and let go of the owner's lock (its segments are then anyone's to load)."""
        self.rotate()
        with self._lock:
            if self._file is not None:  # opened, nothing written
                self._file.close()
                self._active.unlink(missing_ok=True)
                self._file = None
        fcntl.flock(self._owner_lock, fcntl.LOCK_UN)
        self._owner_lock.close()
        Path(self._owner_lock.name).unlink(missing_ok=True)

    # --- loading --------------------------------------------------------------------------------

    def ready(self) -> list[Path]:
        """Segments waiting to load, oldest first; a dead owner's active and claimed ones too."""
        self._adopt_orphans()
        return sorted(self.folder.glob(f"{READY}-*{SUFFIX}"), key=_age)

    def claim(self, segment: Path) -> Path | None:
        """Take a ready segment to load it; None when another process took it first."""
        claimed = _renamed(segment, LOADING)
        try:
            os.rename(segment, claimed)
        except FileNotFoundError:
            return None
        return claimed

    def release(self, claimed: Path) -> None:
        """Give a claimed segment back (its load failed): it loads later."""
        os.rename(claimed, _renamed(claimed, READY))

    def done(self, claimed: Path) -> None:
        """Its rows are committed: the segment goes."""
        claimed.unlink()
        sync_directory(self.folder)

    def backlog(self) -> int:
        """Rows answered and not yet loaded: in segments ready, being loaded, or being written."""
        segments = [p for p in self.folder.glob(f"*{SUFFIX}") if p.name.split("-", 1)[0] in (ACTIVE, READY, LOADING)]
        return sum(_lines(path) for path in segments)

    def _adopt_orphans(self) -> None:
        for lock in self.folder.glob("owner-*.lock"):
            owner = lock.name.removeprefix("owner-").removesuffix(".lock")
            if owner == self.owner or not _dead(lock):
                continue
            for state in (ACTIVE, LOADING):
                for segment in self.folder.glob(f"{state}-*-{owner}-*{SUFFIX}"):
                    os.rename(segment, _renamed(segment, READY))
                    logger.info("journal: %s, left by a server that stopped, will load", segment.name)
            lock.unlink(missing_ok=True)
        sync_directory(self.folder)


def read(segment: Path) -> list[dict]:
    """A segment's records. A last line without its newline was cut short by a kill before its
    fsync returned, so it was never acknowledged: it is skipped, with a warning."""
    data = segment.read_bytes()
    lines = data.split(b"\n")
    if lines[-1]:
        logger.warning("journal: %s ends in a line cut short (never acknowledged); skipped", segment.name)
    return [json.loads(line) for line in lines[:-1] if line]


def _renamed(segment: Path, state: str) -> Path:
    return segment.with_name(f"{state}-{segment.name.split('-', 1)[1]}")


def _age(segment: Path) -> str:
    return segment.name.split("-", 2)[1]  # the time stamp, sortable as text


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    except FileNotFoundError:  # loaded meanwhile
        return 0


def _dead(lock: Path) -> bool:
    """Whether the owner of this lock file is gone: the kernel frees a dead process's flock."""
    try:
        with open(lock) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
            return True
    except BlockingIOError:
        return False
    except FileNotFoundError:
        return False
