"""A night scored in shards (`[BatchPredict] shards`): the same rows, counts and rejects as the
night scored whole, loaded once; a killed shard is redone alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from luigi.execution_summary import LuigiStatusCode

from pipeline.artifacts.prediction import NightScores
from pipeline.common.faults import PAUSE_ANNOUNCEMENT
from pipeline.store import database
from tasks import BatchPredict, Nightly, RegisterModel
from tests.tasks.support import build, fresh

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
NIGHT = "2031-06-01"
PARTIAL = 31  # docs/nightly.md, exit codes: a file was quarantined, every other row scored
SHARDS = 3
SUCCEEDED = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)


def query(url: str, text: str, **params) -> list[dict]:
    with database.connect(url).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(text), params)]


@pytest.fixture
def night_files(configure, tabular_csv, tmp_path, database_url):
    """A model of a table with an id column, and a night of four files: two good, one garbage, and
    one whose last id repeats one of the first file (in another shard); besides them, a link to a
    file outside the night (refused) and a hidden file (skipped), which no shard's files hold."""
    table = pd.read_csv(tabular_csv).reset_index(names="id")
    table["id"] = "row-" + table["id"].astype(str)
    table.to_csv(tabular_csv, index=False)
    settings = {
        "database_url": database_url,
        "dataset": {"path": str(tabular_csv), "label": "label", "id_column": "id"},
    }
    configure(**settings)
    assert build(RegisterModel()).status in SUCCEEDED
    night = tmp_path / "data" / "incoming" / NIGHT
    night.mkdir(parents=True)
    rows = table.drop(columns=["label"])
    rows.iloc[:80].to_csv(night / "a-first.csv", index=False)
    (night / "b-garbage.csv").write_bytes(os.urandom(2000))
    rows.iloc[80:160].to_csv(night / "c-second.csv", index=False)
    pd.concat([rows.iloc[160:200], rows.iloc[79:80]]).to_csv(night / "d-repeats.csv", index=False)
    (night / "e-outside.csv").symlink_to(tabular_csv)
    (night / ".hidden.csv").write_text("id\n")
    return settings, night


def shard_runs(url: str) -> list[dict]:
    return query(url, "SELECT params, status FROM runs WHERE task = 'ScoreShard' ORDER BY started_at")


def shard_of(run: dict) -> str:
    params = run["params"] if isinstance(run["params"], dict) else json.loads(run["params"])  # JSON on PostgreSQL
    return params["shard"]


def whole_night(settings: dict, configure, model: str) -> NightScores:
    """The same night scored as one task, for comparison."""
    configure(**settings, BatchPredict={"shards": "1"})
    task = fresh(BatchPredict, date=pd.Timestamp(NIGHT).date(), model_version=model)
    build(task)
    return NightScores(Path(task.output().path))


def test_a_sharded_night_holds_what_the_whole_night_holds_and_loads_once(night_files, configure, database_url):
    settings, night = night_files
    configure(**settings, BatchPredict={"shards": str(SHARDS)})
    sharded = fresh(Nightly, date=pd.Timestamp(NIGHT).date())
    result = build(sharded)
    assert result.status == LuigiStatusCode.FAILED  # partial: the garbage file is quarantined
    assert "2 file(s) quarantined" in query(database_url, "SELECT error FROM runs WHERE task = 'Nightly'")[0]["error"]
    shard_runs = query(database_url, "SELECT params, status FROM runs WHERE task = 'ScoreShard'")
    assert len(shard_runs) == SHARDS and {run["status"] for run in shard_runs} == {"succeeded"}

    merged = NightScores(Path(fresh(BatchPredict, date=sharded.date, model_version=sharded.model).output().path))
    whole = whole_night(settings, configure, sharded.model)
    counts = ("rows_in", "rows_rejected", "rows_scored", "rows_duplicate_id", "status")
    assert [merged.summary()[c] for c in counts] == [whole.summary()[c] for c in counts]
    assert merged.summary()["rows_duplicate_id"] == 1 and merged.summary()["shards"] == SHARDS
    assert len(pd.read_csv(merged.rejects_path)) == len(pd.read_csv(whole.rejects_path))
    assert (merged.path / "quarantine" / "b-garbage.csv").read_bytes() == (night / "b-garbage.csv").read_bytes()
    # The entries no shard reads are named once, as the whole night names them (the first shard's).
    for entries in ("quarantined", "skipped"):
        assert merged.summary()[entries] == whole.summary()[entries], entries
    assert [entry["reason"] for entry in merged.summary()["skipped"]] == ["a hidden file"]
    assert not (merged.path / "quarantine" / "e-outside.csv").exists()  # refused: never copied

    logged = query(database_url, "SELECT example_id, prediction FROM predictions ORDER BY example_id")
    expected = whole.predictions(["example_id", "prediction"]).sort_values("example_id")
    assert [(r["example_id"], r["prediction"]) for r in logged] == list(expected.itertuples(index=False, name=None))
    assert query(database_url, "SELECT rows_scored, status FROM batches") == [
        {"rows_scored": len(expected), "status": "partial"}
    ]

    configure(**settings, BatchPredict={"shards": str(SHARDS)})
    again = build(fresh(Nightly, date=sharded.date))  # partial again; nothing scored or loaded twice
    assert again.status == LuigiStatusCode.FAILED
    assert len(query(database_url, "SELECT run_id FROM runs WHERE task = 'ScoreShard'")) == SHARDS
    assert len(query(database_url, "SELECT example_id FROM predictions")) == len(expected)


# SQLite: a shard killed on PostgreSQL, and taken over by another host, is tests/tasks/test_hosts.py's.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_killed_shard_is_redone_alone(night_files, configure, tmp_path, database_url):
    settings, night = night_files
    for refused in ("b-garbage.csv", "e-outside.csv"):  # a night of good files: exit 0 when done
        (night / refused).unlink()
    config = configure(**settings, BatchPredict={"shards": str(SHARDS)})
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(config), "OVERNIGHT_TEST_PAUSE_AT": "night:shard-scored:1"}
    luigi = [str(REPO_ROOT / ".venv" / "bin" / "luigi"), "--module", "tasks"]
    model = fresh(Nightly, date=pd.Timestamp(NIGHT).date()).model
    first = [*luigi, "ScoreShard", "--date", NIGHT, "--model-version", model, "--shard", "0", "--shards", str(SHARDS)]
    assert subprocess.run(first, env=env, capture_output=True, timeout=300).returncode == 0  # a shard on its own
    command = [*luigi, "Nightly", "--date", NIGHT]
    worker = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in worker.stderr:
            if PAUSE_ANNOUNCEMENT in line:
                break
        os.killpg(worker.pid, signal.SIGKILL)  # shard 1 scored, not yet renamed into place
    finally:
        worker.wait(timeout=60)
    time.sleep(0.5)

    done_before = {shard_of(run) for run in shard_runs(database_url) if run["status"] == "succeeded"}
    finished = subprocess.run(
        command, env={**env, "OVERNIGHT_TEST_PAUSE_AT": ""}, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    runs = shard_runs(database_url)
    succeeded = [shard_of(run) for run in runs if run["status"] == "succeeded"]
    assert len(succeeded) == SHARDS == len(set(succeeded))  # each shard scored once
    assert len(runs) == SHARDS + 1 and {r["status"] for r in runs} == {"succeeded", "abandoned"}
    assert "0" in done_before and "1" not in done_before
    redone = set(succeeded) - done_before
    assert len(redone) == SHARDS - len(done_before)  # the shards done before the kill were not redone
    assert len(query(database_url, "SELECT example_id FROM predictions")) == 200  # 40 + 80 + 80; the repeated id once
