"""`overnight du` and `overnight gc`: exactly what nothing refers to goes, lineage stays whole,
and a folder a running task holds is left alone."""

from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from luigi.execution_summary import LuigiStatusCode

from pipeline.store import database, registry
from tasks import Nightly, RegisterModel, TrainModel
from tasks.base.outputs import output_lock
from tasks.cli import main as overnight
from tests.tasks.support import build, fresh

NIGHTS = [datetime.date(2026, 11, day) for day in (1, 2, 3)]


def invoke(*arguments: str):
    result = CliRunner().invoke(overnight, list(arguments), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def history(configure, tabular_csv, tmp_path):
    """Models A (archived), B (previous production) and C (production), and three nights."""
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'overnight.db'}"
    sections = {"dataset": {"path": str(tabular_csv)}, "gc": {"keep_nights": "1", "keep_days": "0"}}
    # A is trained on an older export of the data: every stage of its chain is its own version.
    older = tabular_csv.with_name("older.csv")
    pd.read_csv(tabular_csv).iloc[:-12].to_csv(older, index=False)
    versions = []
    for path, rate in ((older, "0.001"), (tabular_csv, "0.003"), (tabular_csv, "0.01")):
        configure(**{**sections, "dataset": {"path": str(path)}}, TrainModel={"learning_rate": rate})
        assert build(fresh(RegisterModel)).status == LuigiStatusCode.SUCCESS
        versions.append(fresh(TrainModel).version)
    engine = database.connect(url)
    for version in versions[1:]:
        registry.promote(engine, version, actor="test", reason="gc test")
    configure(**sections)
    night_rows = pd.read_csv(tabular_csv).drop(columns="label")
    for night in NIGHTS:
        folder = data / "incoming" / night.isoformat()
        folder.mkdir(parents=True)
        night_rows.to_csv(folder / "night.csv", index=False)
        assert build(fresh(Nightly, date=night)).status == LuigiStatusCode.SUCCESS
    rows = {row["version"]: row for row in registry.versions(engine)}
    models = [rows[v] for v in versions]
    return {"data": data, "engine": engine, "sections": sections, "models": models, "older": older}


def _chain(data: Path, output: Path) -> set[Path]:
    """An output's folder and its upstream folders, read from the version.json files."""
    folders = {json.loads(p.read_text())["version"]: p.parent for p in data.glob("0[1-7]_*/*/version.json")}
    found, pending = set(), [output]
    while pending:
        folder = pending.pop()
        found.add(folder)
        upstream = json.loads((folder / "version.json").read_text())["upstream"].values()
        pending += [folders[version] for version in upstream if version in folders]
    return found


def _registration_of(data: Path, evaluation: Path) -> Path:
    for made_of in (data / "07_registry").glob("*/version.json"):
        if json.loads(made_of.read_text())["upstream"].get("EvaluateModel") == evaluation.name:
            return made_of.parent
    raise AssertionError(f"no registration of {evaluation}")


def test_gc_lists_exactly_the_unreferenced_outputs_removes_them_and_lineage_still_works(history, configure):
    data, (a, b, c) = history["data"], history["models"]
    assert registry.production(history["engine"])["version"] == c["version"]
    unreferenced = _chain(data, Path(a["evaluation_path"])) | {_registration_of(data, Path(a["evaluation_path"]))}
    assert {path.parent.name for path in unreferenced} >= {"01_raw", "02_validation", "03_split", "04_features"}
    for night in NIGHTS[:2]:  # keep_nights = 1
        unreferenced |= {path for path in (data / "08_prediction" / night.isoformat()).iterdir()}
        unreferenced |= {path for path in (data / "09_monitoring" / night.isoformat()).iterdir() if path.is_dir()}
    # Checkpoints an interrupted training left: the day-old ones go, a fresh one may still resume.
    stale, fresh_work = data / "05_training" / ".work" / ("0" * 16), data / "05_training" / ".work" / ("1" * 16)
    for folder in (stale, fresh_work):
        folder.mkdir(parents=True)
        (folder / "epoch-1.weights.h5").write_bytes(b"w" * 100)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale / "epoch-1.weights.h5", (two_days_ago, two_days_ago))
    os.utime(stale, (two_days_ago, two_days_ago))
    unreferenced.add(stale)
    # Images `overnight serve` kept, a folder a day: as many days as nights stay.
    answered = [data / "serving" / "images" / night.isoformat() for night in NIGHTS[1:]]
    for folder in answered:
        folder.mkdir(parents=True)
        (folder / "request-0-image").write_bytes(b"png")
    unreferenced.add(answered[0])
    listed = invoke("gc")
    named = {data / line.split()[2] for line in listed.splitlines() if line.startswith("would remove")}
    assert named == unreferenced, listed
    assert all(path.exists() for path in unreferenced)  # a dry run changes nothing
    usage = invoke("du", "--format", "json")
    kept_by = {row["output"]: row["kept by"] for row in json.loads(usage)}
    assert kept_by[str(Path(c["path"]).relative_to(data))] == f"production model {c['version']}"
    assert kept_by[str(Path(b["path"]).relative_to(data))] == "previous production model"
    assert kept_by[str(Path(a["path"]).relative_to(data))] == ""

    # A training of A's version holds its output's lock: gc leaves that folder alone.
    with output_lock(data / ".locks", str(Path(a["path"])), owner="a training") as held:
        assert held
        applied = invoke("gc", "--apply")
    assert f"left {Path(a['path']).relative_to(data)}: a running task holds it" in applied
    assert Path(a["path"]).exists() and not any(path.exists() for path in unreferenced - {Path(a["path"])})
    invoke("gc", "--apply")
    assert not Path(a["path"]).exists() and not stale.exists() and fresh_work.exists()
    assert not answered[0].exists() and answered[1].exists()

    # What production needs is whole: it scores a new night, rollback finds B, B is reproduced.
    night = datetime.date(2026, 11, 4)
    (data / "incoming" / night.isoformat()).mkdir(parents=True)
    pd.read_csv(next((data / "incoming" / NIGHTS[0].isoformat()).glob("*.csv"))).to_csv(
        data / "incoming" / night.isoformat() / "night.csv", index=False
    )
    assert build(fresh(Nightly, date=night)).status == LuigiStatusCode.SUCCESS
    assert "rolled back: " + b["version"] in invoke("rollback", "--reason", "gc test")
    # Exit 1 only says a metric differs in its last digits (CPU threads): the chain was there.
    reproduced = (
        CliRunner()
        .invoke(
            overnight, ["reproduce", b["run_id"], "--scratch", str(data.parent / "reproduced")], catch_exceptions=False
        )
        .output
    )
    assert f"version {b['version']}, reproduced as {b['version']}" in reproduced, reproduced
    # The database keeps every row; `overnight show` says the output went and how it comes back.
    shown = "".join(invoke("show", a["run_id"]).split())  # `show` wraps long lines anywhere
    assert "".join(f"{a['path']} (gone: collected by `overnight gc`".split()) in shown, shown
    # A collected version is rebuilt by the same task command, at the same version.
    older = {**history["sections"], "dataset": {"path": str(history["older"])}}
    configure(**older, TrainModel={"learning_rate": "0.001"})
    assert build(fresh(TrainModel)).status == LuigiStatusCode.SUCCESS
    assert Path(a["path"]).is_dir() and fresh(TrainModel).version == a["version"]
