"""RecordedTask: a task whose every run is a `runs` row (running, then succeeded or failed) with
its metrics, row counts and cost; made under its output's lock."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import luigi
import sqlalchemy as sa
from luigi.task import flatten

from pipeline.common import disk, environment
from pipeline.common.faults import pause_point
from pipeline.common.metrics import Metric
from pipeline.errors import DataError
from pipeline.store import leases, ledger
from tasks import recording
from tasks.base.outputs import output_lock
from tasks.base.resources import gpu_units, pinned_cards
from tasks.base.startup import PreparedTask
from tasks.config import database_url, layout, overnight

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    """What a run reports to the ledger."""

    metrics: list[Metric] = field(default_factory=list)
    rows_in: int | None = None
    rows_rejected: int | None = None

    def merged(self, other: Outcome) -> Outcome:
        """Both outcomes' metrics; the row counts of whichever has them."""
        return Outcome(
            self.metrics + other.metrics,
            self.rows_in if other.rows_in is None else other.rows_in,
            self.rows_rejected if other.rows_rejected is None else other.rows_rejected,
        )


class RecordedTask(PreparedTask, luigi.Task):
    # TensorFlow work declares the cards it uses (tasks.base.resources: ALL_CARDS for a training,
    # ONE_CARD for scoring): it holds them as the Luigi resource `gpu`, and its wall seconds
    # count as GPU seconds on a GPU machine.
    gpu: ClassVar[str | None] = None
    lease: leases.Lease | None = None  # held while the task runs (pipeline/store/leases.py)

    @property
    def resources(self) -> dict[str, int]:
        return gpu_units(self.gpu)

    @property
    def version(self) -> str:
        raise NotImplementedError

    @property
    def data_version(self) -> str | None:
        """The raw data's version this run was built on: every upstream task shares it."""
        return next((task.data_version for task in flatten(self.requires())), None)

    def execute(self) -> Outcome:
        raise NotImplementedError

    def output_location(self) -> str:
        return getattr(self.output(), "path", str(self.output()))

    def run(self):
        try:
            self._run_locked()
        except Exception as error:
            # Libraries report a full disk in their own words (h5py: RuntimeError or OSError with
            # "errno = 28" in the text, SQLite: "database or disk is full"), and any write may be
            # the one that hits it (the lock file, the database, the model): one line that says so.
            if disk.is_disk_full(error) and not isinstance(error, disk.DiskFull):
                raise disk.disk_full(error, _full_disk_where(error)) from error
            raise

    def _run_locked(self) -> None:
        # Two processes may schedule the same task (two commands, --no-lock, two people, two
        # hosts): the second waits here, then finds the work done instead of doing it again
        # beside the first. The flock guards this host; the lease in PostgreSQL every host, also
        # where their file systems do not share flocks.
        location = self.output_location()
        with (
            output_lock(layout().locks(), location, owner=self.task_family, private=overnight().private),
            leases.output_lease(recording.engine(), location, owner=self.task_family) as self.lease,
        ):
            if self.complete():
                logger.info("%s %s was completed by another process meanwhile", self.task_family, self.version)
                return
            with pinned_cards(self.gpu, f"{self.task_family} {self.version}", waiting=self.status):
                self.before_run()
                self._run_recorded()

    def before_run(self) -> None:
        """Called under the output's lock, before the run is recorded."""

    def _run_recorded(self) -> None:
        engine = recording.engine()  # the first run of a process migrates and settles stale runs
        # A worker that waited while another process died (a killed worker, a host that went
        # down, whose task it now takes over) settles that run here, not at its next start.
        recording.settle_dead_runs(engine)
        prices = _prices()  # before the work: a bad price must not cost a training
        lease_s = _run_lease_s()
        self.run_id = ledger.start_run(
            engine,
            task=self.task_family,
            params=self.to_str_params(),
            version=self.version,
            data_version=self.data_version,
            output_path=self.output_location(),
            repo_dir=REPO_ROOT,
        )
        meter = environment.UsageMeter()
        try:
            with ledger.Heartbeat(engine, self.run_id, every_s=lease_s / 3):
                outcome = self._execute_naming_a_full_disk()
        except BaseException as error:
            self._record_failure(engine, error, self._usage(meter, prices))
            raise
        pause_point(f"run:before-finish:{self.task_family}")
        ledger.finish_run(
            engine,
            self.run_id,
            status="succeeded",
            metrics=outcome.metrics,
            rows_in=outcome.rows_in,
            rows_rejected=outcome.rows_rejected,
            **self._usage(meter, prices),
        )
        logger.info("%s %s -> %s", self.task_family, self.version, self.output_location())

    def _execute_naming_a_full_disk(self) -> Outcome:
        try:
            return self.execute()
        except Exception as error:
            # Named before the failure is recorded, so that the ledger holds the one line too.
            if disk.is_disk_full(error) and not isinstance(error, disk.DiskFull):
                raise disk.disk_full(error, _full_disk_where(error)) from error
            raise

    def _record_failure(self, engine, error: BaseException, usage: dict) -> None:
        """The run is `failed` with its error; where that cannot be written (the database's disk is
        full too), a warning, and the run stays `running` until the next command finds its process
        gone and settles it `abandoned` (recording.settle_dead_runs). The error itself goes on."""
        try:
            ledger.finish_run(engine, self.run_id, status="failed", error=f"{type(error).__name__}: {error}", **usage)
        except Exception as recording_error:  # noqa: BLE001 - the run's own error is the one to raise
            logger.warning(
                "run %s's failure not recorded (%s); the next command marks it abandoned",
                self.run_id,
                " ".join(str(recording_error).split())[:300],
            )

    def _usage(self, meter: environment.UsageMeter, prices: dict[str, float]) -> dict:
        """finish_run's resource arguments: CPU, peak memory, GPU and the estimated cost."""
        usage = meter.stop()
        gpu = environment.gpu_name()
        gpu_s = None if gpu is None else usage.wall_s if self.gpu else 0.0
        return {
            "cpu_s": usage.cpu_s,
            "peak_memory_mb": usage.peak_memory_mb,
            "gpu_name": gpu,
            "gpu_s": gpu_s,
            "cost": ledger.estimate_cost(usage.wall_s, gpu_s, **prices),
        }

    def progress(self, done: int, total: int, message: str) -> None:
        # Luigi sets these callbacks only on tasks its worker runs.
        if callable(self.set_progress_percentage):
            self.set_progress_percentage(round(100 * done / max(total, 1)))
        self.status(message)

    def status(self, message: str) -> None:
        if callable(self.set_status_message):
            self.set_status_message(message)


def _full_disk_where(error: BaseException) -> Path | str:
    """The file a full disk stopped: the SQLite database for SQLite's error, else the data root
    (disk.disk_full prefers the file an OSError names)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if "database or disk is full" in str(error):
            url = sa.engine.make_url(database_url())
            return url.database if url.get_backend_name() == "sqlite" and url.database else layout().root
        error = error.__cause__ or error.__context__
    return layout().root


def _prices() -> dict[str, float]:
    settings = overnight()
    prices = {"price_per_hour": settings.price_per_hour, "gpu_price_per_hour": settings.gpu_price_per_hour}
    for name, value in prices.items():
        if not value >= 0:
            raise DataError(f"[overnight] {name} must be zero or more, not {value}")
    return prices


def _run_lease_s() -> float:
    lease_s = overnight().run_lease_s
    if not lease_s > 0:
        raise DataError(f"[overnight] run_lease_s must be more than 0 seconds, not {lease_s}")
    return lease_s
