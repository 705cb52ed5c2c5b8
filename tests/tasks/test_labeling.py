"""Several annotators through the commands a team uses (issue 18), on SQLite and PostgreSQL:
`labeling-queue --annotator` with its quality-control re-checks, the labels coming back through
`feedback/<date>/` and IngestFeedback, and `labeling-report` flagging the careless annotator."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from luigi.configuration.cfg_parser import LuigiConfigParser
from luigi.execution_summary import LuigiStatusCode
from luigi.task_register import Register

from pipeline.store import database, labels, prediction_log
from tasks import IngestFeedback
from tests.tasks.support import build, fresh

NIGHT = datetime.date(2026, 11, 10)
EARLIER = datetime.date(2026, 11, 9)
CLASSES = ("cat", "dog", "bird")


def _overnight(*arguments: str):
    from tasks.cli import main

    return CliRunner().invoke(main, list(arguments), catch_exceptions=False)


@pytest.fixture
def team(engine, database_url, tmp_path, monkeypatch):
    """Two nights scored; the earlier night labeled by `careful` (all) and `same` (always cat)."""
    monkeypatch.setenv("OVERNIGHT_DATABASE_URL", database_url)
    config = tmp_path / "labeling.cfg"
    config.write_text(
        f"[overnight]\ndata_root = {tmp_path / 'data'}\n[dataset]\nlabel = label\nid_column = id\n"
        "[labeling]\nrecheck_share = 0.25\nseed = 3\nmin_agreement = 0.7\nmin_compared = 10\ntie_order = careful\n"
    )
    monkeypatch.setattr(LuigiConfigParser, "_instance", None)
    monkeypatch.setattr(LuigiConfigParser, "_config_paths", [str(config)])
    Register.clear_instance_cache()
    rng = np.random.default_rng(5)
    truth = {}
    for night, count in ((EARLIER, 60), (NIGHT, 200)):
        ids = [f"{night:%m%d}-{index:03d}" for index in range(count)]
        truth.update(zip(ids, rng.choice(CLASSES, count)))
        frame = pd.DataFrame({"example_id": ids, "prediction": "cat", "score": rng.uniform(0.3, 1.0, count)})
        frame["probabilities"] = json.dumps({"cat": 0.5})
        prediction_log.load_batch(
            engine, batch_date=night, model_version="m1", predictions=frame, rows_in=count, rows_rejected=0
        )
    earlier = [example_id for example_id in truth if example_id.startswith(f"{EARLIER:%m%d}")]
    careful = pd.DataFrame({"example_id": earlier, "label": [truth[i] for i in earlier], "annotator": "careful"})
    labels.load_feedback(engine, careful, source="careful.csv")
    same = pd.DataFrame({"example_id": earlier[:40], "label": "cat", "annotator": "same"})
    labels.load_feedback(engine, same, source="same.csv")
    yield engine, truth, tmp_path
    Register.clear_instance_cache()
    database.dispose_all()


def _queue(tmp_path, name: str, *extra: str, rechecks: int = 10) -> pd.DataFrame:
    target = tmp_path / f"{name}.csv"
    result = _overnight(
        "labeling-queue", "--date", str(NIGHT), "--limit", "40", "--annotator", name, "--output", str(target), *extra
    )
    assert result.exit_code == 0, result.output
    assert f"40 rows to label in {target}: {40 - rechecks} new, {rechecks} re-checks" in result.output
    return pd.read_csv(target, dtype=str, keep_default_na=False)


def test_the_queue_holds_the_exact_share_of_rechecks_never_of_the_annotator_s_own_labels(team):
    engine, truth, tmp_path = team
    queue = _queue(tmp_path, "same")
    assert list(queue.columns) == ["batch_date", "example_id", "annotator", "label"]  # blind: no score, no guess
    assert (queue["batch_date"] == str(NIGHT)).all()  # a re-check's earlier night does not show
    assert (queue["annotator"] == "same").all() and (queue["label"] == "").all()
    with engine.connect() as connection:
        stored = pd.read_sql("SELECT example_id, annotator FROM feedback", connection)
    labeled, own = set(stored["example_id"]), set(stored.loc[stored["annotator"] == "same", "example_id"])
    rechecks = queue[queue["example_id"].isin(labeled)]
    assert len(rechecks) == 10 == round(40 * 0.25)  # the share, exactly
    assert not set(rechecks["example_id"]) & own  # never sent back to who labeled it
    new = queue[~queue["example_id"].isin(labeled)]
    with engine.connect() as connection:
        unlabeled = pd.read_sql(
            sa.text("SELECT example_id FROM labeling_queue WHERE batch_date = :d ORDER BY score, example_id"),
            connection,
            params={"d": NIGHT},
        )
    assert new["example_id"].tolist() == unlabeled["example_id"].head(30).tolist()  # least confident first
    positions = np.flatnonzero(queue["example_id"].isin(labeled))
    assert positions.max() - positions.min() > 10  # spread through the file, not a block at its end

    again = _queue(tmp_path, "same", "--force")
    assert again.equals(queue)  # the seed decides: the same command writes the same file
    other = _queue(tmp_path, "ben")
    assert set(other["example_id"][other["example_id"].isin(labeled)]) != set(rechecks["example_id"])


def test_without_an_annotator_the_queue_has_no_rechecks(team):
    engine, _, tmp_path = team
    target = tmp_path / "anyone.csv"
    result = _overnight("labeling-queue", "--date", str(NIGHT), "--limit", "40", "--output", str(target))
    assert result.exit_code == 0, result.output
    queue = pd.read_csv(target, dtype=str)
    with engine.connect() as connection:
        labeled = set(pd.read_sql("SELECT example_id FROM feedback", connection)["example_id"])
    assert len(queue) == 40 and not set(queue["example_id"]) & labeled and "annotator" not in queue.columns


def test_labels_come_back_with_their_annotator_and_the_report_flags_the_careless_one(team):
    engine, truth, tmp_path = team
    # careful labeled every example anyone did: nothing to re-check, the queue is all new rows.
    for name, rechecks in (("careful", 0), ("same", 10)):
        queue = _queue(tmp_path, name, "--force", rechecks=rechecks)
        queue["label"] = [truth[i] if name == "careful" else "cat" for i in queue["example_id"]]
        folder = tmp_path / "data" / "feedback" / str(NIGHT + datetime.timedelta(days=1))
        folder.mkdir(parents=True, exist_ok=True)
        queue.rename(columns={"example_id": "id"}).to_csv(folder / f"{name}.csv", index=False)
    assert build(fresh(IngestFeedback, date=NIGHT + datetime.timedelta(days=1))).status == LuigiStatusCode.SUCCESS
    query = sa.text("SELECT annotator, COUNT(*) AS n FROM feedback WHERE source LIKE :files GROUP BY annotator")
    with engine.connect() as connection:
        back = pd.read_sql(query, connection, params={"files": "%/feedback/%"})
    assert dict(zip(back["annotator"], back["n"])) == {"careful": 40, "same": 40}

    report = _overnight("labeling-report")
    assert report.exit_code == 1, report.output  # a flagged annotator: a cron job can tell
    lines = report.output.splitlines()
    assert lines[0].split() == ["annotator", "labels", "compared", "agreed", "agreement", "kappa", "flagged"]
    assert any(line.split()[0] == "careful" and line.split()[-1] == "False" for line in lines[1:3])
    assert "flagged: same: agreement" in report.output
    _, pairs = labels.agreement_rows(engine)
    assert pairs[["annotator", "other"]].values.tolist() == [["careful", "same"], ["same", "careful"]]
    listed = _overnight("labeling-report", "--pairs", "--format", "json")
    assert json.loads(listed.output)[0]["overlap"] == pairs["overlap"].iloc[0]


def test_a_late_label_row_is_rejected_with_the_column_it_lacks():
    from tasks.monitoring import _feedback_problems

    rows = pd.DataFrame(
        {"example_id": ["a", None, "c", "d"], "label": ["cat", "dog", None, "cat"], "annotator": ["x", "x", "x", " "]}
    )
    assert _feedback_problems(rows, "Origin").tolist() == [
        None,
        "expected an id",
        "expected a label in column 'Origin'",  # the queue's label column is named after [dataset] label
        "expected an annotator",
    ]
