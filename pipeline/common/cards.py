"""Which GPU cards of this host a task uses: each card held by one task at a time, through a lock.

A central scheduler counts the `gpu` resource for the whole cluster, not per host: it may grant
two trials on a host with one card while another host's cards idle, and it never says which card.
So every GPU task takes its cards here, on its own host, before TensorFlow starts: one lock file
per card in a folder local to the host (flock: the kernel drops a lock when its holder dies, even
by SIGKILL), then CUDA_VISIBLE_DEVICES names the cards it holds. A task that finds too few free
cards waits for them, holding none meanwhile, so two waiting trainings never hold one card each.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

VISIBLE_VARIABLE = "CUDA_VISIBLE_DEVICES"
POLL_S = 1.0

# The cards TensorFlow started with in this process: it reads CUDA_VISIBLE_DEVICES once, so every
# later task of the process must hold the same cards (a single Luigi worker runs tasks in turn).
_tensorflow_cards: tuple[str, ...] | None = None


def lock_folder() -> Path:
    """Per host, shared by its users: the temporary folder (TMPDIR), never the shared data root."""
    folder = Path(tempfile.gettempdir()) / "overnight-cards"
    if not folder.is_dir():
        folder.mkdir(exist_ok=True)
        with contextlib.suppress(PermissionError):  # another user made it: theirs to chmod
            folder.chmod(0o1777)  # every user's tasks share the host's cards; /tmp's sticky bit
    return folder


def host_cards(listed: int) -> list[str]:
    """The cards this host lets tasks use: CUDA_VISIBLE_DEVICES' entries up to its first negative
    one (as CUDA reads it) when set, else every card nvidia-smi lists, as their indices."""
    visible = os.environ.get(VISIBLE_VARIABLE)
    if visible is None:
        return [str(index) for index in range(listed)]
    chosen = [device.strip() for device in visible.split(",") if device.strip()]
    usable = next((i for i, device in enumerate(chosen) if device.startswith("-")), len(chosen))
    return chosen[: min(usable, listed)]


@contextlib.contextmanager
def holding_cards(
    count: int, cards: list[str], folder: Path, waiting: Callable[[str], None] = lambda message: None
) -> Iterator[tuple[str, ...]]:
    """Hold `count` of `cards` until the block ends, waiting while fewer are free; inside it,
    CUDA_VISIBLE_DEVICES names them (restored after, for the process's next task)."""
    global _tensorflow_cards
    wanted = _tensorflow_cards if _tensorflow_cards is not None else tuple(cards)
    count = min(count, len(wanted))
    with contextlib.ExitStack() as held:
        chosen = _wait_for(count, wanted, folder, held, waiting)
        before = os.environ.get(VISIBLE_VARIABLE)
        os.environ[VISIBLE_VARIABLE] = ",".join(chosen)
        try:
            yield chosen
        finally:
            if "tensorflow" in sys.modules and _tensorflow_cards is None:
                _tensorflow_cards = chosen
            _restore(before)


def _wait_for(count: int, wanted: tuple[str, ...], folder: Path, held: contextlib.ExitStack, waiting) -> tuple:
    told = False
    while True:
        chosen = _try_to_take(count, wanted, folder)
        if chosen is not None:
            for handle in chosen.values():
                held.callback(handle.close)  # closing the file releases its lock
            return tuple(chosen)
        if not told:
            message = f"waiting for {count} free card(s) of {', '.join(wanted)} on this host (locks in {folder})"
            logger.info(message)
            waiting(message)
            told = True
        time.sleep(POLL_S)


def _try_to_take(count: int, wanted: tuple[str, ...], folder: Path) -> dict | None:
    """The first `count` free cards of `wanted`, locked; None, holding nothing, when too few are free."""
    taken: dict[str, object] = {}
    for card in wanted:
        if len(taken) == count:
            break
        handle = _open_lock(folder / f"card-{card}.lock")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        taken[card] = handle
    if len(taken) == count:
        return taken
    for handle in taken.values():
        handle.close()
    return None


def _open_lock(path: Path):
    handle = open(path, "a")  # noqa: SIM115 - held open for the lock's lifetime, closed by the caller
    with contextlib.suppress(PermissionError):  # another user's file: already shared
        os.fchmod(handle.fileno(), 0o666)
    return handle


def _restore(before: str | None) -> None:
    if before is None:
        os.environ.pop(VISIBLE_VARIABLE, None)
    else:
        os.environ[VISIBLE_VARIABLE] = before
