"""The one base class of every stage task: content-addressed output, atomic write, run ledger.

A stage's output folder is `<data_root>/<NN_stage>/<version>/`, where the version hashes the
task's significant parameters, its inputs' versions and its stage's code. Change any of them and
the stage reruns into a new folder; change nothing and the folder exists, so nothing runs.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import luigi
from luigi.task import flatten

from pipeline import environment, ledger
from pipeline.errors import DataError
from pipeline.ledger import Metric
from tasks import recording
from tasks.config import data_root, overnight

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
VERSION_LENGTH = 16
VERSION_FILE = "version.json"
# Task families whose work runs on the GPU when there is one (TensorFlow); their GPU seconds are
# their wall seconds. Other tasks on a GPU machine record 0 GPU seconds.
GPU_TASKS = frozenset({"TrainModel", "EvaluateModel", "RegisterModel", "BatchPredict"})


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
    def version(self) -> str:
        raise NotImplementedError

    @property
    def data_version(self) -> str | None:
        upstream = flatten(self.requires())
        return upstream[0].data_version if upstream else None

    def run(self):
        engine = recording.engine()
        prices = _prices()  # before the work: a bad price must not cost a training
        self.run_id = ledger.start_run(engine, task=self.task_family, params=self.to_str_params(),
                                       version=self.version, data_version=self.data_version,
                                       output_path=self.output_location(), repo_dir=REPO_ROOT)
        meter = environment.UsageMeter()
        try:
            outcome = self.execute()
        except BaseException as error:
            ledger.finish_run(engine, self.run_id, status="failed", error=f"{type(error).__name__}: {error}",
                              **self._resources_used(meter, prices))
            raise
        ledger.finish_run(engine, self.run_id, status="succeeded", metrics=outcome.metrics,
                          rows_in=outcome.rows_in, rows_rejected=outcome.rows_rejected,
                          **self._resources_used(meter, prices))
        logger.info("%s %s -> %s", self.task_family, self.version, self.output_location())

    def _resources_used(self, meter: environment.UsageMeter, prices: dict[str, float]) -> dict:
        """finish_run's resource arguments: CPU, peak memory, GPU and the estimated cost."""
        usage = meter.stop()
        gpu = environment.gpu_name()
        gpu_s = None if gpu is None else usage.wall_s if self.task_family in GPU_TASKS else 0.0
        return {"cpu_s": usage.cpu_s, "peak_memory_mb": usage.peak_memory_mb, "gpu_name": gpu, "gpu_s": gpu_s,
                "cost": ledger.estimate_cost(usage.wall_s, gpu_s, **prices)}

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
            self._made_of = {"task": self.task_family,
                             "params": self.to_str_params(only_significant=True),
                             "upstream": {task.task_family: task.version for task in flatten(self.requires())},
                             "code": code_hash(self.code),
                             **self.identity()}
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
        self._remove_abandoned_attempts()
        with self.output().temporary_path() as temporary:
            out_dir = Path(temporary)
            out_dir.mkdir(parents=True)
            try:
                outcome = self.build(out_dir)
                self._check_postcondition(out_dir)
                write_json(out_dir / VERSION_FILE, {"version": self.version, **self.made_of()})
            except BaseException:
                shutil.rmtree(out_dir, ignore_errors=True)  # a failed attempt leaves nothing behind
                raise
        return outcome

    def _remove_abandoned_attempts(self) -> None:
        """Temporary folders of earlier attempts at this version: a killed run never renamed them."""
        final = Path(self.output().path)
        for leftover in final.parent.glob(f"{final.name}-luigi-tmp-*"):
            logger.info("removing %s, left by an interrupted run", leftover)
            shutil.rmtree(leftover, ignore_errors=True)

    def _check_postcondition(self, out_dir: Path) -> None:
        missing = [name for name in self.expected_files if not (out_dir / name).exists()]
        if missing:
            raise RuntimeError(f"{self.task_family} did not write {', '.join(missing)} in {out_dir}")


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
