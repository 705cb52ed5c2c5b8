"""Safety of task outputs on disk: one process makes an output at a time, what it wrote is
durable before it is renamed into place, and what killed runs left behind is removed."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.common.files import ensure_dir, open_for_append
from pipeline.layout import TEMPORARY_MARK
from pipeline.store import leases

logger = logging.getLogger(__name__)

LOCK_NAME_LENGTH = 16


@contextmanager
def output_lock(locks: Path, location: str, *, owner: str, wait: bool = True, private: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on one task output while this process makes it.

    A `flock` on `<locks>/<hash of the output path>.lock`: the kernel releases it when the
    holder dies, so a killed run never leaves a lock behind; the small files stay for reuse.
    Yields True once held. When another process holds it: waits, or with `wait=False` yields
    False at once. ``private`` (`[overnight] private`): a new lock folder 0700, a new lock file
    0600 (it names the output and its owner), also in a data root others can enter.
    """
    ensure_dir(locks, private=private)
    path = locks / f"{hashlib.sha256(location.encode()).hexdigest()[:LOCK_NAME_LENGTH]}.lock"
    with open_for_append(path, private=private) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            logger.info("%s: another process is making %s; waiting for it (%s)", owner, location, path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}: {owner} {location}\n")  # for a person
            handle.flush()
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_abandoned_attempts(final: Path, locks: Path, engine, *, owner: str, private: bool = True) -> None:
    """Temporary outputs beside `final` that no live process is writing: killed runs never
    renamed them.

    The caller holds `final`'s lock and lease, so its own temporary outputs are abandoned for
    sure. Another version's temporary folder in the same stage folder (an attempt killed before
    the code, the data or a parameter changed) is removed when its own output lock and lease
    (pipeline/store/leases.py, `engine`'s) are free; a live run at that version holds them, on
    this host or another, and its folder is left alone.
    """
    for leftover in sorted(final.parent.glob(f"*{TEMPORARY_MARK}*")):
        location = str(final.parent / leftover.name.split(TEMPORARY_MARK, 1)[0])
        if location == str(final):
            _remove(leftover)
            continue
        cleanup = f"{owner} cleanup"
        with (
            output_lock(locks, location, owner=cleanup, wait=False, private=private) as unlocked,
            leases.output_lease(engine, location, owner=cleanup, wait=False) as unleased,
        ):
            if unlocked and unleased:
                _remove(leftover)


def _remove(leftover: Path) -> None:
    logger.info("removing %s, left by an interrupted run", leftover)
    if leftover.is_dir():
        shutil.rmtree(leftover, ignore_errors=True)
    else:
        leftover.unlink(missing_ok=True)
