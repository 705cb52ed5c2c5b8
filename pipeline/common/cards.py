"""Which GPU cards of this host a task uses: each card held by one task at a time, through a lock.

A central scheduler counts the `gpu` resource for the whole cluster, not per host: it may grant
two trials on a host with one card while another host's cards idle, and it never says which card.
So every GPU task takes its cards here, on its own host, before TensorFlow starts: a lock file
per card and slot in a folder local to the host (flock: the kernel drops a lock when its holder
dies, even by SIGKILL), then CUDA_VISIBLE_DEVICES names the cards it holds. A card has one slot
unless `[overnight] tasks_per_card` says more (small models that share a card). A task that finds
too few free cards waits for them, holding none meanwhile, so two waiting trainings never hold
one card each.
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
    count: int, cards: list[str], folder: Path, waiting: Callable[[str], None] = lambda message: None, slots: int = 1
) -> Iterator[tuple[str, ...]]:
    """Hold `count` of `cards` (a slot of each; `slots` per card) until the block ends, waiting
    while fewer are free; inside it, CUDA_VISIBLE_DEVICES names them (restored after, for the
    process's next task). A process whose TensorFlow has started holds every card it started on:
    TensorFlow computes on them whatever a later task asks."""
    global _tensorflow_cards
    wanted = _tensorflow_cards if _tensorflow_cards is not None else tuple(cards)
    count = len(wanted) if _tensorflow_cards is not None else min(count, len(wanted))
    with contextlib.ExitStack() as held:
        chosen = _wait_for(count, wanted, folder, held, waiting, max(1, slots))
        before = os.environ.get(VISIBLE_VARIABLE)
        os.environ[VISIBLE_VARIABLE] = ",".join(chosen)
        try:
            yield chosen
        finally:
            if "tensorflow" in sys.modules and _tensorflow_cards is None:
                _tensorflow_cards = chosen
            _restore(before)


def _wait_for(count: int, wanted: tuple, folder: Path, held: contextlib.ExitStack, waiting, slots: int) -> tuple:
    told = False
    while True:
        chosen = _try_to_take(count, wanted, folder, slots)
        if chosen is not None:
            for handle in chosen.values():
                held.callback(os.close, handle)  # closing the file releases its lock
            return tuple(chosen)
        if not told:
            message = f"waiting for {count} free card(s) of {', '.join(wanted)} on this host (locks in {folder})"
            logger.info(message)
            waiting(message)
            told = True
        time.sleep(POLL_S)


def _try_to_take(count: int, wanted: tuple[str, ...], folder: Path, slots: int) -> dict | None:
    """A free slot on each of the first `count` cards of `wanted` that have one, locked; None,
    holding nothing, when too few cards have a free slot."""
    taken: dict[str, int] = {}
    for card in wanted:
        if len(taken) == count:
            break
        handle = _free_slot(folder, card, slots)
        if handle is not None:
            taken[card] = handle
    if len(taken) == count:
        return taken
    for handle in taken.values():
        os.close(handle)
    return None


def _free_slot(folder: Path, card: str, slots: int) -> int | None:
    for slot in range(slots):
        name = f"card-{card}.lock" if slot == 0 else f"card-{card}.{slot}.lock"
        handle = _open_lock(folder / name)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            continue
        return handle
    return None


def _open_lock(path: Path) -> int:
    """The lock file, opened for reading (flock needs no more). An existing file is opened without
    O_CREAT: where the kernel protects regular files in sticky folders (fs.protected_regular),
    O_CREAT on another user's file in /tmp fails even though the file is readable."""
    while True:
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            pass
        try:
            handle = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue  # another task made it meanwhile: open it as it is
        return handle


def _restore(before: str | None) -> None:
    if before is None:
        os.environ.pop(VISIBLE_VARIABLE, None)
    else:
        os.environ[VISIBLE_VARIABLE] = before
