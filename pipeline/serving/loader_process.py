"""The journal's loader in a process of its own, beside each server process.

Loading is Python work (JSON, pandas, SQL round trips) that holds the interpreter's lock: on a
thread of the server it delayed the requests that came while it ran, about once a second
(benchmarks/bench_serve.py, tabular model: p99 at concurrency 1 26.2 ms with the loader thread,
23.8 ms with it idle; requests/s at concurrency 32 222 against 319). So the server process only
closes its active segment every `interval` (a rename), and a child process started with `spawn`
(no copy of TensorFlow's threads) loads what is ready (pipeline/serving/loader.py).

The child stops when told, after loading what is left, and on its own when the server process is
gone (killed with SIGKILL: its next start, or the child's last round, loads the rest).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from pathlib import Path

from pipeline.serving.journal import Journal

__all__ = ["LoaderProcess"]

logger = logging.getLogger(__name__)

DRAIN_SECONDS = 5.0  # at stop, how long the child goes on loading what is left


class LoaderProcess:
    """Closes the server's active segment every `interval` seconds; a child process loads them."""

    def __init__(self, journal: Journal, database_url: str, *, interval: float = 1.0):
        self.journal = journal
        self._database_url = database_url
        self._interval = interval
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()
        self._process = None
        self._rotating = threading.Event()
        self._rotator = threading.Thread(target=self._rotate, name="overnight-journal-rotator", daemon=True)

    def start(self) -> None:
        self._process = self._context.Process(
            target=load_until_stopped,
            args=(
                str(self.journal.folder),
                self._database_url,
                self._interval,
                self.journal.private,
                self._stop,
                os.getpid(),
            ),
            name="overnight-journal-loader",
            daemon=True,
        )
        self._process.start()
        self._rotator.start()

    def _rotate(self) -> None:
        while not self._rotating.wait(self._interval):
            self.journal.rotate()

    def stop(self) -> None:
        """Close the active segment, let the child load what is left, and wait for it."""
        self._rotating.set()
        self._rotator.join()
        self.journal.rotate()
        self._stop.set()
        if self._process is not None:
            self._process.join(timeout=DRAIN_SECONDS + 10)
            if self._process.is_alive():
                logger.warning("journal: the loader did not stop in time; what it left loads at the next start")
                self._process.terminate()


def load_until_stopped(folder: str, database_url: str, interval: float, private: bool, stop, parent: int) -> None:
    """The child: load ready segments every `interval` seconds until `stop` is set or the server
    process `parent` is gone, then what is left for at most DRAIN_SECONDS."""
    from pipeline.serving.loader import JournalLoader
    from pipeline.store import database, online_log

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    journal = Journal(Path(folder), private=private)
    loader = JournalLoader(journal, lambda rows: online_log.load_online(database.connect(database_url), rows))
    try:
        while not stop.is_set() and os.getppid() == parent:
            loader.load_ready()
            stop.wait(interval)
        loader.load_ready(deadline=DRAIN_SECONDS)
    finally:
        journal.close()
