"""The one base class of every stage task: content-addressed output, atomic write, run ledger.

A stage's output folder is `<data_root>/<NN_stage>/<version>/`, where the version hashes the
task's significant parameters, its inputs' versions and its stage's code. Change any of them and
the stage reruns into a new folder; change nothing and the folder exists, so nothing runs.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import luigi
from luigi.task import flatten

from pipeline.common import environment
from pipeline.common.faults import pause_point
from pipeline.common.metrics import Metric
from pipeline.errors import DataError
from pipeline.store import ledger
from tasks import recording
from tasks.config import data_root, overnight

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
VERSION_LENGTH = 16
VERSION_FILE = "version.json"
LOCKS = ".locks"  # under data_root: one lock file per task output, held while a process makes it
TEMPORARY = "-luigi-tmp-"  # in the name of Luigi's temporary paths (target.temporary_path, atomic files)
# Task families whose work runs on the GPU when there is one (TensorFlow); their GPU seconds are
# their wall seconds. Other tasks on a GPU machine record 0 GPU seconds.
GPU_TASKS = frozenset({"TrainModel", "EvaluateModel", "RegisterModel", "BatchPredict"})


def gpu_units(*, trains: bool) -> dict[str, int]:
    """Units of the Luigi resource `gpu` a TensorFlow task holds, so that trials, trainings and a
    nightly batch never share a card beyond `[resources] gpu`.

    A training holds every card it mirrors over (capped by `[resources] gpu`, or it could never
    be scheduled); scoring and evaluation hold one. Cards are counted through nvidia-smi: no CUDA
    is initialised in the scheduling process, which later forks the workers.
    """
    cards = environment.usable_gpu_count()
    if not cards:
        return {}
    if not trains:
        return {"gpu": 1}
    capacity = luigi.configuration.get_config().getint("resources", "gpu", cards)
    return {"gpu": max(1, min(cards, capacity))}


@dataclass
class Outcome:
    """What a stage reports to the run ledger."""

    metrics: list[Metric] = field(default_factory=list)
    rows_in: int | None = None
    rows_rejected: int | None = None


class RecordedTask(luigi.Task):
    """A task whose every run is a `runs` row: running, then succeeded or failed."""

    def execute(self) -> Outcome:
        raise NotImplementedError

    @property
    def resources(self) -> dict[str, int]:
        """The Luigi resource `gpu` for TensorFlow work on a GPU machine (see gpu_units)."""
        return gpu_units(trains=self.task_family == "TrainModel") if self.task_family in GPU_TASKS else {}

    @property
    def version(self) -> str:
        raise NotImplementedError

    @property
    def data_version(self) -> str | None:
        upstream = flatten(self.requires())
        return upstream[0].data_version if upstream else None

    def complete(self) -> bool:
        # The first completeness check of a command settles the runs that a killed process left
        # `running`, even when everything is complete and no task will touch the database.
        recording.settle_stale_runs()
        return super().complete()

    def run(self):
        # Two processes may schedule the same task (two commands, --no-lock, two people): the
        # second waits here, then finds the work done instead of doing it again beside the first.
        with output_lock(self.output_location(), owner=self.task_family):
            if self.complete():
                logger.info("%s %s was completed by another process meanwhile", self.task_family, self.version)
                return
            self._remove_abandoned_attempts()
            self._run_recorded()

    def _remove_abandoned_attempts(self) -> None:
        """Temporary outputs that no live process is writing: killed runs never renamed them.

        Ours (this version) are abandoned for sure, since this process holds the output's lock
        (see run). Another version's temporary folder in the same stage folder (an attempt
        killed before the code, the data or a parameter changed) is removed when its own output
        lock is free; a live run at that version holds it, and its folder is left alone.
        """
        if getattr(self.output(), "path", None) is None:
            return  # not a file or folder (LogPredictions: a database row)
        final = Path(self.output().path)
        for leftover in sorted(final.parent.glob(f"*{TEMPORARY}*")):
            location = str(final.parent / leftover.name.split(TEMPORARY, 1)[0])
            if location != str(final):
                with output_lock(location, owner=f"{self.task_family} cleanup", wait=False) as free:
                    if free:
                        _remove(leftover)
            else:
                _remove(leftover)

    def _run_recorded(self) -> None:
        engine = recording.engine()
        prices = _prices()  # before the work: a bad price must not cost a training
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
            outcome = self.execute()
        except BaseException as error:
            ledger.finish_run(
                engine,
                self.run_id,
                status="failed",
                error=f"{type(error).__name__}: {error}",
                **self._resources_used(meter, prices),
            )
            raise
        pause_point(f"run:before-finish:{self.task_family}")
        ledger.finish_run(
            engine,
            self.run_id,
            status="succeeded",
            metrics=outcome.metrics,
            rows_in=outcome.rows_in,
            rows_rejected=outcome.rows_rejected,
            **self._resources_used(meter, prices),
        )
        logger.info("%s %s -> %s", self.task_family, self.version, self.output_location())

    def _resources_used(self, meter: environment.UsageMeter, prices: dict[str, float]) -> dict:
        """finish_run's resource arguments: CPU, peak memory, GPU and the estimated cost."""
        usage = meter.stop()
        gpu = environment.gpu_name()
        gpu_s = None if gpu is None else usage.wall_s if self.task_family in GPU_TASKS else 0.0
        return {
            "cpu_s": usage.cpu_s,
            "peak_memory_mb": usage.peak_memory_mb,
            "gpu_name": gpu,
            "gpu_s": gpu_s,
            "cost": ledger.estimate_cost(usage.wall_s, gpu_s, **prices),
        }

    def output_location(self) -> str:
        return getattr(self.output(), "path", str(self.output()))

    def progress(self, done: int, total: int, message: str) -> None:
        # Luigi sets these callbacks only on tasks its worker runs.
        if callable(self.set_progress_percentage):
            self.set_progress_percentage(round(100 * done / max(total, 1)))
        self.status(message)

    def status(self, message: str) -> None:
        if callable(self.set_status_message):
            self.set_status_message(message)


class StageTask(RecordedTask):
    """A stage whose output is a folder `<data_root>/<NN_stage>/<version>/`, written atomically."""

    folder: ClassVar[str]  # "05_training": the stage's folder under data_root
    code: ClassVar[tuple[str, ...]] = ()  # files and folders (from the repo root) that make the stage
    expected_files: ClassVar[tuple[str, ...]] = ()  # postcondition: build() must have written these

    def build(self, out_dir: Path) -> Outcome:
        """Load the inputs, call the stage's pipeline function, write into out_dir."""
        raise NotImplementedError

    def identity(self) -> dict:
        """Everything the output depends on besides upstream versions and code; override to add."""
        return {}

    def made_of(self) -> dict:
        """Everything the version hashes; saved as version.json so `overnight plan` can say what changed."""
        if not hasattr(self, "_made_of"):
            self._made_of = {
                "task": self.task_family,
                "params": self.to_str_params(only_significant=True),
                "upstream": {task.task_family: task.version for task in flatten(self.requires())},
                "code": code_hash(self.code),
                **self.identity(),
            }
        return self._made_of

    @property
    def version(self) -> str:
        if not hasattr(self, "_version"):
            self._version = _sha256(json.dumps(self.made_of(), sort_keys=True, default=str))[:VERSION_LENGTH]
        return self._version

    def output(self):
        return luigi.LocalTarget(str(data_root() / self.folder / self.version))

    def input_dir(self, index: int = 0) -> Path:
        return Path(flatten(self.input())[index].path)

    def execute(self) -> Outcome:
        final = Path(self.output().path)
        with self.output().temporary_path() as temporary:
            out_dir = Path(temporary)
            out_dir.mkdir(parents=True)
            try:
                outcome = self.build(out_dir)
                self._check_postcondition(out_dir)
                write_json(out_dir / VERSION_FILE, {"version": self.version, **self.made_of()})
                # Luigi renames without syncing: after a power cut the folder could be in place
                # with empty or missing files. Contents first, then the rename, then its folder.
                sync_tree(out_dir)
            except BaseException:
                shutil.rmtree(out_dir, ignore_errors=True)  # a failed attempt leaves nothing behind
                raise
            pause_point(f"stage:before-rename:{self.task_family}")
        sync_directory(final.parent)
        return outcome

    def _check_postcondition(self, out_dir: Path) -> None:
        missing = [name for name in self.expected_files if not (out_dir / name).exists()]
        if missing:
            raise RuntimeError(f"{self.task_family} did not write {', '.join(missing)} in {out_dir}")


@contextmanager
def output_lock(location: str, *, owner: str, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on one task output while this process makes it.

    A `flock` on `<data_root>/.locks/<hash of the output path>.lock`: the kernel releases it when
    the holder dies, so a killed run never leaves a lock behind; the small files stay for reuse.
    Yields True once held. When another process holds it: waits, or with `wait=False` yields
    False at once.
    """
    folder = data_root() / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_sha256(location)[:VERSION_LENGTH]}.lock"
    with open(path, "a+") as handle:
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
            handle.write(f"pid {os.getpid()}: {owner} {location}\n")  # for a person looking
            handle.flush()
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove(leftover: Path) -> None:
    logger.info("removing %s, left by an interrupted run", leftover)
    if leftover.is_dir():
        shutil.rmtree(leftover, ignore_errors=True)
    else:
        leftover.unlink(missing_ok=True)


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


def code_hash(paths: tuple[str, ...]) -> str:
    """A hash of the source files that make a stage (folders: every .py file inside)."""
    digest = hashlib.sha256()
    for relative in paths:
        path = REPO_ROOT / relative
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(f"{relative}/{file.relative_to(path).as_posix()}".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _prices() -> dict[str, float]:
    settings = overnight()
    prices = {"price_per_hour": settings.price_per_hour, "gpu_price_per_hour": settings.gpu_price_per_hour}
    for name, value in prices.items():
        if not value >= 0:
            raise DataError(f"[overnight] {name} must be zero or more, not {value}")
    return prices


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def write_json(path: Path, document) -> None:
    Path(path).write_text(json.dumps(document, indent=2, sort_keys=False, default=str))
