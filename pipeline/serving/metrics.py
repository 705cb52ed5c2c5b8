"""The server's Prometheus metrics, right whether one process answers or several (`--workers N`).

With several workers each process counts what it answered, and a scrape reaches one of them: its
own counts alone would look right and be a fraction of the truth. So `overnight serve --workers
N` gives the workers a fresh folder in PROMETHEUS_MULTIPROC_DIR before they start (prometheus-
client's multiprocess mode, chosen when the library is imported): every process writes its counts
there, and whichever answers a scrape adds them all up. The journal's backlog is the shared
journal's, read by the process that answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

__all__ = ["MULTIPROCESS_DIR", "ServeMetrics"]

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class ServeMetrics:
    """The counts of one server process, and the exposition of every process's."""

    def __init__(self, backlog: Callable[[], int]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "overnight_serve_requests", "Scoring requests answered, by HTTP status", ["status"], registry=self.registry
        )
        self.rows = Counter("overnight_serve_rows", "Rows sent, by outcome", ["outcome"], registry=self.registry)
        self.latency = Histogram(
            "overnight_serve_request_seconds",
            "Time from a scoring request's arrival to its answer",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.model_calls = Counter(
            "overnight_serve_model_calls", "Model calls made (each answers a group)", registry=self.registry
        )
        # Per process (a `pid` label with several workers): each swaps its model on its own.
        self.model = Gauge(
            "overnight_serve_model",
            "1 for the model version answering",
            ["version"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self._shared = CollectorRegistry()
        Gauge("overnight_serve_journal_backlog_rows", "Answers not yet in SQL", registry=self._shared).set_function(
            backlog
        )
        self._version: str | None = None

    def serving(self, version: str) -> None:
        """The model answering is now `version`."""
        if self._version is not None and self._version != version:
            self.model.labels(version=self._version).set(0)  # what another process's scrape reads
            self.model.remove(self._version)
        self.model.labels(version=version).set(1)
        self._version = version

    def exposition(self) -> bytes:
        """Prometheus's text format: every process's counts with several workers, else this one's."""
        if os.environ.get(MULTIPROCESS_DIR):
            every_process = CollectorRegistry()
            multiprocess.MultiProcessCollector(every_process)
            return generate_latest(every_process) + generate_latest(self._shared)
        return generate_latest(self.registry) + generate_latest(self._shared)

    def stopping(self) -> None:
        """This process ends: its live gauges leave the sum (its counts stay)."""
        if os.environ.get(MULTIPROCESS_DIR):
            multiprocess.mark_process_dead(os.getpid())
