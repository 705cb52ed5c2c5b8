"""`overnight reproduce RUN`: train again from the recorded parameters and data, compare metrics.

Everything a training's version was made of is on disk: each stage output keeps version.json
(parameters, upstream versions, and for the raw stage the [dataset] settings and the data
fingerprint). Reproduction rebuilds the chain with those settings in a scratch data root and a
scratch database, by running the `luigi` command in a fresh process from the current directory,
as a person would.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.common.files import ensure_dir
from pipeline.errors import DataError
from pipeline.layout import VERSION_FILE
from pipeline.stages.fingerprint import fingerprint
from pipeline.store import database, ledger
from tasks import FitPreprocessor, IngestData, SplitData, TrainModel, ValidateData
from tasks.config import layout, overnight

# The stage tasks a training is built on, by name: their folders come from the tasks themselves.
STAGES = {task.__name__: task.stage for task in (IngestData, ValidateData, SplitData, FitPreprocessor, TrainModel)}


@dataclass
class Reproduction:
    run_id: str
    original_version: str
    reproduced_version: str
    scratch: Path
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.mismatches and self.compared > 0


def reproduce(engine, run_id: str, *, scratch: Path | None = None, timeout: float = 3600) -> Reproduction:
    """Retrain the TrainModel run `run_id` in a scratch folder and compare its metrics.

    Raises:
        DataError: the run is not a finished training, its inputs' records are gone, or the raw
            data changed since (a different data version cannot reproduce the metrics).
    """
    run = _training_run(engine, run_id)
    chain = _recorded_chain(run["version"])
    _check_raw_data(chain["IngestData"])
    scratch = Path(scratch or tempfile.mkdtemp(prefix="overnight-reproduce-"))
    config = _write_config(chain, scratch)
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("luigi")), "--module", "tasks", "TrainModel"],
        # Where the person runs it, as they ran the training: luigi.cfg and
        # relative data paths mean the same as then.
        cwd=Path.cwd(),
        env=_environment(config),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    scratch_engine = database.connect(_scratch_url(scratch))
    rerun = ledger.latest_run(scratch_engine, "TrainModel")
    if completed.returncode != 0 or rerun is None:
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
        raise DataError(f"the reproduction failed (exit {completed.returncode}); log tail:\n{tail}")
    result = Reproduction(run["run_id"], run["version"], rerun["version"], scratch)
    _compare(ledger.metrics_of(engine, run["run_id"]), ledger.metrics_of(scratch_engine, rerun["run_id"]), result)
    return result


def _training_run(engine, run_id: str) -> dict:
    from pipeline.store.runs import RunNotFound, find_run_id, run_details

    try:
        run = run_details(engine, find_run_id(engine, run_id))
    except RunNotFound as error:
        raise DataError(str(error)) from None
    if run["task"] != "TrainModel" or run["status"] != "succeeded":
        raise DataError(
            f"run {run['run_id']} is a {run['status']} {run['task']} run; reproduce a succeeded TrainModel run"
        )
    return run


def _recorded_chain(training_version: str) -> dict[str, dict]:
    """version.json of the training and every stage it was built on, by task family."""
    chain, pending = {}, [("TrainModel", training_version)]
    while pending:
        task, version = pending.pop()
        path = layout().output(STAGES[task], version) / VERSION_FILE
        if not path.exists():
            raise DataError(f"{path} is gone: the {task} output this run was built on was deleted")
        made_of = json.loads(path.read_text())
        chain[task] = made_of
        pending += [(name, upstream) for name, upstream in made_of.get("upstream", {}).items() if name in STAGES]
    return chain


def _check_raw_data(ingest: dict) -> None:
    path = ingest["dataset"]["path"]
    now = fingerprint(path, layout().fingerprint_cache())
    if now != ingest["fingerprint"]:
        raise DataError(
            f"the raw data in {path} changed since this run (fingerprint {ingest['fingerprint'][:12]} "
            f"then, {now[:12]} now): restore it to reproduce"
        )


def _write_config(chain: dict[str, dict], scratch: Path) -> Path:
    dataset = dict(chain["IngestData"]["dataset"])
    dataset["kinds"] = ", ".join(f"{column}:{kind}" for column, kind in dataset.get("kinds", {}).items())
    sections = {
        "overnight": {"data_root": str(scratch / "data"), "database_url": _scratch_url(scratch)},
        "dataset": {key: _ini(value) for key, value in dataset.items()},
    }
    for task, made_of in chain.items():
        if made_of.get("params"):
            sections[task] = {name: _ini(value) for name, value in made_of["params"].items()}
    path = scratch / "reproduce.cfg"
    ensure_dir(scratch, private=overnight().private)  # its config and logs: like the data root's
    path.write_text(
        "".join(
            f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in options.items()) + "\n"
            for name, options in sections.items()
        )
    )
    return path


def _ini(value) -> str:
    if isinstance(value, (list, tuple)):  # [dataset] missing_values: written as it is read
        value = ", ".join(map(str, value))
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text.replace("%", "%%")  # Luigi's config interpolates %


def _scratch_url(scratch: Path) -> str:
    return f"sqlite:///{scratch / 'overnight.db'}"


def _environment(config: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "OVERNIGHT_DATABASE_URL"}
    env.update(LUIGI_CONFIG_PATH=str(config), TF_CPP_MIN_LOG_LEVEL="2")
    return env


def _compare(original, reproduced, result: Reproduction) -> None:
    def keyed(metrics):
        return {(m.split, m.slice, m.name, m.epoch, m.baseline): m.value for m in metrics}

    before, after = keyed(original), keyed(reproduced)
    for key in sorted(set(before) | set(after), key=str):
        old, new = before.get(key), after.get(key)
        result.compared += 1
        same = old is not None and new is not None and (old == new or (math.isnan(old) and math.isnan(new)))
        if not same:
            split, slice_name, name, epoch, baseline = key
            of = f"{', baseline ' + baseline if baseline else ''}{', epoch ' + str(epoch) if epoch else ''}"
            where = f"{name} ({split}{of})"
            result.mismatches.append(f"{where}: {old} then, {new} now")
