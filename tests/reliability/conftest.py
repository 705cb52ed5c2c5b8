"""Shared fixtures of the reliability tests.

Crash and overlap fixtures (test_crash*.py, test_overlap*.py) are prefixed `crash_`. A
`CrashWorld` is a scratch data root with its own Luigi config file and database, driven the way
cron and people drive the pipeline: `luigi --module tasks ...` as a subprocess in the repo root.
`crash_check` looks at a world after a kill and after the rerun, and names every broken promise.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipeline.common.faults import PAUSE_ANNOUNCEMENT, PAUSE_VARIABLE, SECONDS_VARIABLE
from pipeline.examples import write_digits, write_examples
from pipeline.store import database, registry

REPO_ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).with_name("luigi"))
CRASH_FIRST_NIGHT = datetime.date(2031, 3, 1)  # far from other tests' nights: nightly.sh locks per date
CRASH_PER_NIGHT = 16  # below MonitorDrift's min_rows (30): a tiny night never raises a drift alert
CRASH_BROKEN_PER_NIGHT = 2  # unreadable images in every other night: rejected, never scored
CRASH_TRAINING = {"architecture": "cnn", "epochs": "2", "batch_size": "64", "patience": "0"}
CRASH_TRAINING_DIGITS = 500
CRASH_EXAMPLE_NIGHTS = 10  # the most nights (late ones included) a world takes


def crash_config_text(sections: dict[str, dict[str, str]]) -> str:
    return "\n".join(
        f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in options.items())
        for name, options in sections.items()
    )


@dataclass
class CrashWorld:
    """A data root, its config file and database; `repo` is the code that runs (a patched copy in
    the broken-variant tests)."""

    root: Path
    database_url: str
    repo: Path = REPO_ROOT
    nights: list[str] = field(default_factory=list)
    late_pool: list[Path] = field(default_factory=list)  # images that "arrive late" for a night

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "crash.cfg"

    def write_config(self, raw_path: Path) -> None:
        self.config.write_text(
            crash_config_text(
                {
                    # Luigi's own pid lock (one process per command line) stays on, but per world: other
                    # test sessions on this machine may run the very same command lines at the same time.
                    "core": {"local_scheduler": "true", "lock_pid_dir": str(self.root / "luigi-pids")},
                    "overnight": {
                        "data_root": str(self.data),
                        "database_url": f"sqlite:///{self.data / 'overnight.db'}",
                    },
                    "dataset": {"path": str(raw_path), "label": "label", "task": "classification"},
                    "TrainModel": dict(CRASH_TRAINING),
                }
            )
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("OVERNIGHT_") and key not in ("LUIGI_CONFIG_PATH", "PYTHONPATH")
        }
        env.update(
            LUIGI_CONFIG_PATH=str(self.config),
            OVERNIGHT_DATABASE_URL=self.database_url,
            TF_CPP_MIN_LOG_LEVEL="2",
            MPLCONFIGDIR=str(self.root / ".matplotlib"),
        )
        if self.repo != REPO_ROOT:
            env["PYTHONPATH"] = str(self.repo)  # ahead of the editable install of the real repo
        env.update(extra)
        return env

    def luigi(self, *arguments: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [LUIGI, "--module", "tasks", *arguments],
            cwd=self.repo,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, command: list[str], log: Path, **extra_env: str) -> subprocess.Popen:
        """A process in its own group (so a kill takes its children too), output to `log`."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as handle:
            return subprocess.Popen(
                command,
                cwd=self.repo,
                env=self.env(**extra_env),
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def rows(self, query: str, **params) -> list[dict]:
        with database.connect(self.database_url).connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.text(query), params)]

    def expected_ids(self, date: str) -> set[str]:
        """The night's example ids that must be scored: every readable image, no broken one."""
        return {path.stem for path in (self.data / "incoming" / date).glob("digit-*.png")}

    def rows_in(self, date: str) -> int:
        return len([path for path in (self.data / "incoming" / date).iterdir() if path.is_file()])

    def add_late_files(self, date: str, count: int) -> list[str]:
        """Images that arrive after the night ran: the night's next run scores them too."""
        late, self.late_pool = self.late_pool[:count], self.late_pool[count:]
        for image in late:
            shutil.copy(image, self.data / "incoming" / date / image.name)
        return [image.stem for image in late]

    def register(self, model: dict) -> None:
        """Register and promote an already trained model in this world's database."""
        engine = database.connect(self.database_url)
        registry.register(
            engine,
            version=model["version"],
            run_id=None,
            path=model["path"],
            sha256=model["sha256"],
            files=model.get("files"),
            task=model["task"],
            data_version=model["data_version"],
            evaluation_path=model["evaluation_path"],
            headline=model["headline"],
            metrics=model["metrics"],
            actor="crash-test",
        )
        registry.promote(engine, model["version"], actor="crash-test", reason="crash test world")


def crash_new_world(root: Path, database_url: str | None = None, *, repo: Path = REPO_ROOT) -> CrashWorld:
    """A world with a small training set (CRASH_TRAINING_DIGITS digits) and no nights."""
    root.mkdir(parents=True, exist_ok=True)
    world = CrashWorld(root, database_url or f"sqlite:///{root / 'data' / 'overnight.db'}", repo=repo)
    write_digits(world.data / "raw" / "digits", limit=CRASH_TRAINING_DIGITS)
    world.write_config(world.data / "raw" / "digits")
    return world


@pytest.fixture(scope="session")
def crash_examples(tmp_path_factory) -> Path:
    """Nights of unlabeled digits with their late labels, written once; worlds copy what they need."""
    root = tmp_path_factory.mktemp("crash-examples")
    # One night more than any world takes: write_examples shifts the last one, which these tests do not want.
    write_examples(root, nights=CRASH_EXAMPLE_NIGHTS + 1, per_night=CRASH_PER_NIGHT, first_night=CRASH_FIRST_NIGHT)
    return root


def crash_copy_nights(
    world: CrashWorld, examples: Path, nights: int, late_nights: int, first_night: datetime.date
) -> None:
    """Nights (every other one with unreadable images, which are rejected) and their late labels,
    dated from `first_night`; then a pool of images from `late_nights` more for late arrivals."""
    assert nights + late_nights <= CRASH_EXAMPLE_NIGHTS
    day = datetime.timedelta(days=1)
    for index in range(nights + late_nights):
        source = CRASH_FIRST_NIGHT + index * day
        if index >= nights:
            world.late_pool += sorted((examples / "incoming" / source.isoformat()).glob("*.png"))
            continue
        night = first_night + index * day
        shutil.copytree(examples / "incoming" / source.isoformat(), world.data / "incoming" / night.isoformat())
        shutil.copytree(
            examples / "feedback" / (source + day).isoformat(), world.data / "feedback" / (night + day).isoformat()
        )
        if index % 2 == 0:
            for number in range(CRASH_BROKEN_PER_NIGHT):
                (world.data / "incoming" / night.isoformat() / f"broken-{number}.png").write_bytes(b"not a png at all")
        world.nights.append(night.isoformat())


@pytest.fixture(scope="session")
def crash_model(tmp_path_factory) -> dict:
    """A model trained, evaluated and registered once per session; nightly worlds register it."""
    world = crash_new_world(tmp_path_factory.mktemp("crash-model"))
    result = world.luigi("RegisterModel")
    assert result.returncode == 0, result.stderr[-3000:]
    model = registry.production(database.connect(world.database_url))
    database.dispose_all()
    return model


@pytest.fixture
def crash_nightly_world(tmp_path, crash_model, crash_examples) -> Callable[..., CrashWorld]:
    """crash_nightly_world(database_url, nights=..., late_nights=...) -> a world whose production
    model is `crash_model` (no training data of its own: the nightly tasks never read it)."""

    def make(
        database_url: str | None = None,
        *,
        nights: int,
        late_nights: int = 0,
        repo: Path = REPO_ROOT,
        name: str = "world",
        first_night: datetime.date = CRASH_FIRST_NIGHT,
    ) -> CrashWorld:
        root = tmp_path / name
        world = CrashWorld(root, database_url or f"sqlite:///{root / 'data' / 'overnight.db'}", repo=repo)
        crash_copy_nights(world, crash_examples, nights, late_nights, first_night)
        world.write_config(crash_examples / "raw" / "digits")
        world.register(crash_model)
        return world

    yield make
    database.dispose_all()


# --- killing -------------------------------------------------------------------------------------


def crash_kill(process: subprocess.Popen) -> None:
    """SIGKILL the process and its whole group, as a power cut or the OOM killer would."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def crash_wait_for_pause(process: subprocess.Popen, log: Path, label: str, timeout: float = 120) -> None:
    """Wait until the process announces that it sleeps at pause point `label`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"{PAUSE_ANNOUNCEMENT} {label}" in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(
                f"exit {process.returncode} before pause point {label}:\n" + log.read_text(errors="replace")[-3000:]
            )
        time.sleep(0.02)
    crash_kill(process)
    raise AssertionError(f"pause point {label} not reached within {timeout} s")


def crash_wait_for_path(process: subprocess.Popen, pattern: str, root: Path, timeout: float = 120) -> Path | None:
    """Poll (every ~2 ms) for a path matching `pattern` under root; None if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next(iter(root.glob(pattern)), None)
        if found is not None:
            return found
        if process.poll() is not None:
            return None
        time.sleep(0.002)
    raise AssertionError(f"{pattern} did not appear within {timeout} s")


def crash_pause_env(label: str) -> dict[str, str]:
    return {PAUSE_VARIABLE: label, SECONDS_VARIABLE: "300"}


# --- checking ------------------------------------------------------------------------------------

# Stage folders under data_root and how a finished output is found in each.
_STAGE_LAYOUT = {  # task class name -> glob of its finished folders
    "IngestData": "01_raw/*",
    "ValidateData": "02_validation/*",
    "SplitData": "03_split/*",
    "FitPreprocessor": "04_features/*",
    "TrainModel": "05_training/*",
    "EvaluateModel": "06_evaluation/*",
    "RegisterModel": "07_registry/*",
    "BatchPredict": "08_prediction/*/*",
    "MonitorDrift": "09_monitoring/*/drift-*",
    "IngestFeedback": "09_monitoring/*/feedback-*",
}
TEMPORARY = "-luigi-tmp-"


def _task_classes() -> dict:
    import tasks

    return {name: getattr(tasks, name) for name in _STAGE_LAYOUT}


def crash_finished_outputs(data: Path) -> Iterator[tuple[str, Path]]:
    """(task, folder) of every output folder a task would take for finished."""
    for task, pattern in _STAGE_LAYOUT.items():
        for path in sorted(data.glob(pattern)):
            # .work: checkpoints; trials, tuning: TuneModel's folders inside 05_training.
            skipped = TEMPORARY in path.name or path.name.startswith(".") or path.name in ("trials", "tuning")
            if path.is_dir() and not skipped:
                yield task, path


def _load_problem(path: Path) -> str | None:
    """Why a file cannot be read back, or None."""
    try:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        elif suffix == ".json":
            json.loads(path.read_text())
        elif suffix == ".csv":
            import pandas as pd

            if path.stat().st_size > 1:  # an empty rejects file is a header or nothing
                pd.read_csv(path)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                for name in arrays.files:
                    arrays[name]
        elif suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                if bad is not None or "config.json" not in archive.namelist():
                    return f"{path.name}: damaged member {bad}"
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as image:
                image.verify()
        elif suffix == ".html" and "</html>" not in path.read_text(errors="replace")[-200:]:
            return f"{path.name}: truncated HTML"
    except Exception as error:  # noqa: BLE001 - any failure to read back is the finding
        return f"{path.name}: {type(error).__name__}: {str(error)[:120]}"
    return None


_checked_files: dict[tuple, str | None] = {}


def crash_output_problems(data: Path) -> list[str]:
    """Every finished-looking output folder holds all its expected files, and each one reads back."""
    classes = _task_classes()
    problems = []
    for task, folder in crash_finished_outputs(data):
        expected = (*classes[task].artifact.FILES, "version.json")
        missing = [name for name in expected if not (folder / name).is_file()]
        if missing:
            problems.append(f"{task} {folder.relative_to(data)} is in place without {', '.join(missing)}")
            continue
        version = json.loads((folder / "version.json").read_text()).get("version", "")
        if not folder.name.endswith(version):
            problems.append(f"{task} {folder.relative_to(data)}: version.json says {version}")
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "tensorboard" not in path.parts:
                stat = path.stat()
                key = (str(path), stat.st_size, stat.st_mtime_ns)
                if key not in _checked_files:
                    _checked_files[key] = _load_problem(path)
                if _checked_files[key]:
                    problems.append(f"{task} {folder.relative_to(data)}: {_checked_files[key]}")
    return problems


def crash_models_load(data: Path) -> list[str]:
    """Load every finished model with Keras (safe mode): the real test of a .keras file."""
    import keras

    problems = []
    for task, folder in crash_finished_outputs(data):
        if task == "TrainModel":
            try:
                keras.models.load_model(folder / "model.keras", compile=False)
            except Exception as error:  # noqa: BLE001
                problems.append(f"TrainModel {folder.name}: model.keras does not load: {error}")
    return problems


@dataclass
class CrashLedger:
    """What the database says about every night: batches rows, prediction counts and ids."""

    batches: dict[tuple[str, str], int]  # (date, model) -> rows_scored
    counts: dict[tuple[str, str], tuple[int, int]]  # (date, model) -> (rows, distinct example ids)

    @classmethod
    def read(cls, world: CrashWorld) -> CrashLedger:
        batches = {
            (str(row["batch_date"]), row["model_version"]): row["rows_scored"]
            for row in world.rows("SELECT batch_date, model_version, rows_scored FROM batches")
        }
        counts = {
            (str(row["batch_date"]), row["model_version"]): (row["n"], row["ids"])
            for row in world.rows(
                "SELECT batch_date, model_version, COUNT(*) AS n, "
                "COUNT(DISTINCT example_id) AS ids FROM predictions "
                "GROUP BY batch_date, model_version"
            )
        }
        return cls(batches, counts)


def crash_database_problems(world: CrashWorld, before: CrashLedger | None = None) -> list[str]:
    """No half-loaded night is visible, none is duplicated, and no earlier load went missing."""
    now = CrashLedger.read(world)
    problems = []
    for key, (rows, ids) in now.counts.items():
        if rows != ids:
            problems.append(f"predictions {key}: {rows - ids} duplicated row(s)")
        if key not in now.batches:
            problems.append(f"predictions {key}: {rows} row(s) visible without their batches row (half a load)")
    for key, scored in now.batches.items():
        rows = now.counts.get(key, (0, 0))[0]
        if rows != scored:
            problems.append(f"batches {key} says {scored} rows, predictions hold {rows}")
    if before is not None:
        for key, scored in before.batches.items():
            if key not in now.batches:
                problems.append(f"batches {key}: an earlier complete load ({scored} rows) is gone")
    return problems


def crash_night_problems(world: CrashWorld, date: str, model: str) -> tuple[list[str], int, int]:
    """After a night ran to completion: exactly its expected rows, each once. -> (problems, lost, extra)."""
    expected = world.expected_ids(date)
    stored = [
        row["example_id"]
        for row in world.rows(
            "SELECT example_id FROM predictions WHERE batch_date = :d AND model_version = :m",
            d=datetime.date.fromisoformat(date),
            m=model,
        )
    ]
    lost, extra = expected - set(stored), set(stored) - expected
    duplicated = len(stored) - len(set(stored))
    problems = []
    if lost:
        problems.append(f"night {date}: {len(lost)} row(s) lost, e.g. {sorted(lost)[:3]}")
    if extra or duplicated:
        problems.append(f"night {date}: {len(extra)} unexpected and {duplicated} duplicated row(s)")
    batch = world.rows(
        "SELECT rows_in, rows_rejected, rows_scored FROM batches WHERE batch_date = :d AND model_version = :m",
        d=datetime.date.fromisoformat(date),
        m=model,
    )
    want = {
        "rows_in": world.rows_in(date),
        "rows_rejected": world.rows_in(date) - len(expected),
        "rows_scored": len(expected),
    }
    if batch != [want]:
        problems.append(f"night {date}: batches row {batch}, expected {want}")
    return problems, len(lost), len(extra) + duplicated


def crash_leftover_problems(world: CrashWorld) -> list[str]:
    """After a completed rerun: no temporary folder of a killed attempt, no lock still held."""
    problems = [f"left behind: {path.relative_to(world.data)}" for path in world.data.rglob(f"*{TEMPORARY}*")]
    for lock in sorted((world.data / ".locks").glob("*.lock")):
        with open(lock) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                problems.append(f"lock still held: {lock.name}")
    return problems


def crash_running_runs(world: CrashWorld, pid: int | None = None) -> list[dict]:
    query = "SELECT run_id, task, status, pid FROM runs WHERE status = 'running'"
    rows = world.rows(query)
    return [row for row in rows if pid is None or row["pid"] == pid]
