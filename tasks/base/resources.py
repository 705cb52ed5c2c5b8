"""GPUs as the Luigi resource `gpu`: what a task holds, and what the machine offers.

Cards are counted through nvidia-smi, never CUDA: the scheduling process forks the workers, and
a process that initialised CUDA cannot fork working children.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator

import luigi

from pipeline.common import cards
from pipeline.common.environment import hardware, usable_gpu_count
from tasks.config import overnight

logger = logging.getLogger(__name__)

ALL_CARDS, ONE_CARD = "all", "one"  # what a TensorFlow task declares it uses


def gpu_units(use: str | None) -> dict[str, int]:
    """Units of `gpu` a task holds, so that trials, trainings and a nightly batch never share a
    card beyond `[resources] gpu`.

    A training holds every card it mirrors over (capped by `[resources] gpu`, or it could never
    be scheduled); scoring and evaluation hold one. Nothing on a machine without a GPU.
    """
    cards = usable_gpu_count()
    if use is None or not cards:
        return {}
    if use == ONE_CARD:
        return {"gpu": 1}
    capacity = luigi.configuration.get_config().getint("resources", "gpu", cards)
    return {"gpu": max(1, min(cards, capacity))}


def offer_detected_gpus() -> None:
    """Offer the GPUs found at start as the Luigi resource `gpu`, unless `[resources] gpu` is set.

    Luigi reads `[resources]` once, when it creates its scheduler; an unconfigured resource
    counts as one unit, which a training holding every card of a multi-card machine would never
    fit in. On a machine without a GPU no task asks for the resource and nothing is offered.
    """
    count = usable_gpu_count()
    if not count:
        return
    # Tasks that share a card (gpu set above the card count) take memory as they need it,
    # instead of all of it at start. Inherited by the worker processes; TensorFlow reads it.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    config = luigi.configuration.get_config()
    if not config.has_option("resources", "gpu"):
        if not config.has_section("resources"):
            config.add_section("resources")
        config.set("resources", "gpu", str(count))


@contextlib.contextmanager
def pinned_cards(use: str | None, who: str, waiting: Callable[[str], None]) -> Iterator[tuple[str, ...]]:
    """This host's cards for a task that declares `use`, held while it runs (pipeline/common/cards.py):
    the scheduler's `gpu` grant counts the cluster, this lock the host. Nothing without a GPU."""
    count = gpu_units(use).get("gpu", 0)
    if not count:
        yield ()
        return
    slots = overnight().tasks_per_card
    with cards.holding_cards(count, hardware()["cards"], cards.lock_folder(), waiting, slots=slots) as chosen:
        logger.info("%s on card(s) %s of %s", who, ",".join(chosen), socket.gethostname())
        yield chosen
