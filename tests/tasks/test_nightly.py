"""Nightly batches end to end: registry, scoring, prediction log, drift, late labels, rollback."""

from __future__ import annotations

import datetime
import html
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from luigi.execution_summary import LuigiStatusCode

from pipeline.artifacts.model import ModelFolder
from pipeline.store import database, registry
from tasks import Nightly, TrainModel
from tasks.cli import main as overnight
from tests.markdown import code_blocks, section
from tests.tasks.conftest import PER_NIGHT
from tests.tasks.support import build, fresh

# One worker takes the tests of the `trained` fixture: its model is trained once per backend, not per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("trained")]
SUCCEEDED = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"


def day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


def scalar(url: str, query: str, **params):
    with database.connect(url).connect() as connection:
        return connection.execute(sa.text(query), params).scalar()


def rows(url: str, query: str, **params) -> list[dict]:
    with database.connect(url).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(query), params)]


def test_nights_are_logged_once_drift_alerts_and_labels_join(trained):
    url, examples, _ = trained
    production = registry.production(database.connect(url))
    assert production["version"] == fresh(TrainModel).version and production["stage"] == "production"

    first, second, shifted = examples.nights
    for night in (first, second):
        assert build(fresh(Nightly, date=day(night))).status in SUCCEEDED
        assert scalar(url, "SELECT COUNT(*) FROM predictions WHERE batch_date = :d", d=day(night)) == PER_NIGHT
    batch = rows(
        url, "SELECT rows_in, rows_rejected, rows_scored, status FROM batches WHERE batch_date = :d", d=day(first)
    )
    assert batch == [{"rows_in": PER_NIGHT, "rows_rejected": 0, "rows_scored": PER_NIGHT, "status": "loaded"}]

    again = build(fresh(Nightly, date=day(first)))
    assert again.status == LuigiStatusCode.SUCCESS and "Did not run any tasks" in again.summary_text
    assert scalar(url, "SELECT COUNT(*) FROM predictions") == 2 * PER_NIGHT

    alarmed = build(fresh(Nightly, date=day(shifted)))
    assert alarmed.status == LuigiStatusCode.FAILED
    assert scalar(url, "SELECT COUNT(*) FROM predictions WHERE batch_date = :d", d=day(shifted)) == PER_NIGHT
    drifted = {
        row["feature"] for row in rows(url, "SELECT feature FROM drift_alerts WHERE batch_date = :d", d=day(shifted))
    }
    assert drifted and not rows(url, "SELECT feature FROM drift_alerts WHERE batch_date <> :d", d=day(shifted))
    failed = rows(url, "SELECT status, error FROM runs WHERE task = 'Nightly' AND status = 'failed'")
    assert failed and "drift on" in failed[0]["error"]

    # Labels for the first night arrived with the second night and were taken in then.
    quality = rows(url, "SELECT batch_date, labeled, accuracy FROM prediction_quality_daily ORDER BY batch_date")
    assert [q["batch_date"] for q in quality][:1] in ([day(first)], [first])
    assert quality[0]["labeled"] == int(PER_NIGHT * 0.8) and 0 <= quality[0]["accuracy"] <= 1


def test_an_empty_night_succeeds_with_a_batches_row_that_says_so(trained, tmp_path):
    url, _, _ = trained
    empty = day("2030-01-01")
    (tmp_path / "data" / "incoming" / empty.isoformat()).mkdir(parents=True)  # there, without files
    assert build(fresh(Nightly, date=empty)).status in SUCCEEDED
    assert rows(url, "SELECT rows_in, rows_scored, status FROM batches WHERE batch_date = :d", d=empty) == [
        {"rows_in": 0, "rows_scored": 0, "status": "empty"}
    ]


def test_a_missing_night_fails_and_says_which_folder_it_expected(trained, tmp_path, caplog):
    url, _, _ = trained
    missing = day("2030-01-02")  # no incoming/2030-01-02 at all: an export that never came
    assert build(fresh(Nightly, date=missing)).status == LuigiStatusCode.FAILED
    assert rows(url, "SELECT rows_in, status FROM batches WHERE batch_date = :d", d=missing) == [
        {"rows_in": 0, "status": "missing"}
    ]
    expected = tmp_path / "data" / "incoming" / missing.isoformat()
    assert f"no folder {expected}" in caplog.text
    # Where a night without files is normal, [Nightly] allow_missing lets it pass.
    assert build(fresh(Nightly, date=missing, allow_missing=True)).status in SUCCEEDED


def test_rollback_changes_which_model_scores_the_next_batch(trained, configure, tmp_path):
    url, examples, config = trained
    first_model = fresh(TrainModel).version
    # A second model, promoted by hand (the gate would rightly keep a worse one out).
    assert build(fresh(TrainModel, learning_rate=0.003)).status in SUCCEEDED
    second_model = fresh(TrainModel, learning_rate=0.003).version
    runner = CliRunner()
    env = {"OVERNIGHT_DATABASE_URL": url}
    registry.register(
        database.connect(url),
        version=second_model,
        run_id=None,
        path=fresh(TrainModel, learning_rate=0.003).output().path,
        # The file's own hash: scoring checks the model against it.
        sha256=ModelFolder(Path(fresh(TrainModel, learning_rate=0.003).output().path)).sha256(),
        task="classification",
        data_version=None,
        evaluation_path=registry.production(database.connect(url))["evaluation_path"],
        headline=0.0,
        metrics={},
        actor="test",
    )
    promoted = runner.invoke(overnight, ["promote", second_model, "--reason", "try the faster learner"], env=env)
    assert promoted.exit_code == 0, promoted.output

    first, second, _ = examples.nights
    assert build(fresh(Nightly, date=day(first))).status in SUCCEEDED
    assert {r["model_version"] for r in rows(url, "SELECT DISTINCT model_version FROM predictions")} == {second_model}

    rolled = runner.invoke(overnight, ["rollback", "--reason", "worse on the night"], env=env)
    assert rolled.exit_code == 0 and first_model in rolled.output, rolled.output
    assert build(fresh(Nightly, date=day(second))).status in SUCCEEDED
    assert {
        r["model_version"]
        for r in rows(url, "SELECT DISTINCT model_version FROM predictions WHERE batch_date = :d", d=day(second))
    } == {first_model}
    events = [(e["version"], e["event"]) for e in rows(url, "SELECT version, event FROM model_events ORDER BY id")]
    assert (second_model, "promote") in events and (first_model, "rollback") in events
    reasons = {e["reason"] for e in rows(url, "SELECT reason FROM model_events")}
    assert {"try the faster learner", "worse on the night"} <= reasons


def test_nightly_script_runs_from_root_under_a_bare_environment_once_per_date(trained, tmp_path):
    url, examples, config = trained
    first = examples.nights[0]
    bare = {"PATH": "/usr/bin:/bin", "LUIGI_CONFIG_PATH": str(config), "OVERNIGHT_DATABASE_URL": url}
    script = str(REPO_ROOT / "scripts" / "nightly.sh")

    data_root = Path(config.read_text().split("data_root = ")[1].splitlines()[0])
    lock = data_root / ".locks" / f"nightly-{first}.lock"  # per data set and date
    lock.parent.mkdir(parents=True, exist_ok=True)
    # Another run holding the date's lock (flock hands it to sleep: stop the whole group).
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"], start_new_session=True)
    try:
        _wait_until_locked(lock)
        refused = subprocess.run(
            ["env", "-i", *[f"{k}={v}" for k, v in bare.items()], script, first],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 10 and "already running" in refused.stderr
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()

    done = subprocess.run(
        ["env", "-i", *[f"{k}={v}" for k, v in bare.items()], script, first],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert scalar(url, "SELECT COUNT(*) FROM predictions WHERE batch_date = :d", d=day(first)) == PER_NIGHT
    log = data_root / "logs" / f"nightly-{first}.log"
    assert log.exists() and "Nightly" in log.read_text()

    shifted = subprocess.run(
        ["env", "-i", *[f"{k}={v}" for k, v in bare.items()], script, examples.nights[2]],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shifted.returncode == 30 and "drift on" in shifted.stderr, shifted.stderr


def _wait_until_locked(lock: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["flock", "--nonblock", str(lock), "true"]).returncode != 0:
            return
        time.sleep(0.05)
    raise AssertionError("the lock was never taken")


def cookbook_queries() -> list[str]:
    """The SQL blocks of docs/database.md's "SQL cookbook", as printed."""
    return code_blocks(section(DOCS / "database.md", "## SQL cookbook"), "sql")


def _second_annotator(data: Path, examples, *, flipped: int) -> int:
    """A second person, `ben`, labels half of each night's labeled images again, disagreeing on
    `flipped` of them per night; returns how many examples end up with conflicting labels."""
    import pandas as pd

    conflicting = 0
    for arrival in examples.feedback_dates:
        first = data / "feedback" / arrival / "labels.csv"
        if not first.exists():
            continue
        again = pd.read_csv(first).head(len(pd.read_csv(first)) // 2).assign(annotator="ben")
        again.loc[: flipped - 1, "label"] = (again.loc[: flipped - 1, "label"] + 1) % 10
        again.to_csv(first.with_name("ben.csv"), index=False)
        conflicting += flipped
    return conflicting


def test_every_query_in_the_docs_runs_as_printed_and_the_cookbook_s_answer(trained, tmp_path):
    url, examples, _ = trained
    _second_annotator(tmp_path / "data", examples, flipped=3)
    for night in examples.nights:
        build(fresh(Nightly, date=day(night)))
    queries = cookbook_queries()
    assert len(queries) >= 16
    example = scalar(url, "SELECT example_id FROM predictions ORDER BY example_id LIMIT 1")
    for query in queries:
        printed = query.replace("'digit-0002'", f"'{example}'")  # an id this smaller example has
        with database.connect(url).connect() as connection:
            answer = connection.execute(sa.text(printed)).all()
        assert answer, f"no rows from:\n{query}"
        if "learning curve" in query:  # one row per epoch, each column named
            assert len({row.epoch for row in answer}) == len(answer) and answer[0].val_loss is not None

    # The other pages' queries run too (the online answers' are empty here: nothing was served).
    elsewhere = [
        query
        for page in sorted(DOCS.glob("*.md"))
        if page.name != "database.md"
        for query in code_blocks(page.read_text(), "sql")
    ]
    assert len(elsewhere) >= 3
    for query in elsewhere:
        with database.connect(url).connect() as connection:
            connection.execute(sa.text(query)).all()


def test_include_feedback_adds_labeled_nightly_examples_to_the_next_training_data(trained, configure, tmp_path):
    url, examples, _ = trained
    _second_annotator(tmp_path / "data", examples, flipped=3)  # only the first night's labels load below
    for night in examples.nights[:2]:
        assert build(fresh(Nightly, date=day(night))).status in SUCCEEDED
    from tasks import IngestData

    before = fresh(IngestData)
    training_rows = __import__("json").loads((Path(before.output().path) / "dataset.json").read_text())["rows"]
    labeled = scalar(url, "SELECT COUNT(*) FROM resolved_labels WHERE distinct_labels = 1")
    conflicting = scalar(url, "SELECT COUNT(*) FROM resolved_labels WHERE distinct_labels > 1")
    assert labeled + conflicting == int(PER_NIGHT * 0.8) and conflicting == 3
    assert scalar(url, "SELECT COUNT(*) FROM feedback") == int(PER_NIGHT * 0.8) + int(PER_NIGHT * 0.8) // 2

    data = tmp_path / "data"
    configure(
        database_url=url,
        dataset={"path": str(data / "raw" / "digits"), "include_feedback": "true"},
        TrainModel={"architecture": "cnn", "epochs": "2"},
    )
    after = fresh(IngestData)
    assert after.version != before.version
    assert build(after).status in SUCCEEDED
    snapshot = __import__("pandas").read_parquet(Path(after.output().path) / "snapshot.parquet")
    assert len(snapshot) == training_rows + labeled
    from_nights = snapshot[snapshot["_source_file"].str.contains("/incoming/")]
    assert len(from_nights) == labeled and from_nights["label"].notna().all()
    # The examples ben and the first annotator disagree on stay out, counted in the run record.
    recorded = rows(
        url,
        "SELECT m.name, m.value FROM run_metrics m JOIN runs r ON r.run_id = m.run_id "
        "WHERE r.task = 'IngestData' AND r.version = :v AND m.name LIKE 'feedback_%'",
        v=after.version,
    )
    assert {row["name"]: row["value"] for row in recorded} == {"feedback_used": labeled, "feedback_conflicting": 3}


def test_files_arriving_after_a_night_ran_are_scored_on_the_rerun(trained, tmp_path):
    url, examples, _ = trained
    first = examples.nights[0]
    assert build(fresh(Nightly, date=day(first))).status in SUCCEEDED
    incoming = tmp_path / "data" / "incoming" / first
    late = sorted((tmp_path / "data" / "incoming" / examples.nights[1]).iterdir())[:5]
    for image in late:
        (incoming / image.name).write_bytes(image.read_bytes())
    assert build(fresh(Nightly, date=day(first))).status in SUCCEEDED
    assert scalar(url, "SELECT COUNT(*) FROM predictions WHERE batch_date = :d", d=day(first)) == PER_NIGHT + 5
    assert scalar(url, "SELECT rows_scored FROM batches WHERE batch_date = :d", d=day(first)) == PER_NIGHT + 5


def test_a_night_of_mostly_rejected_rows_fails_with_one_line(trained, tmp_path):
    url, examples, _ = trained
    night = tmp_path / "data" / "incoming" / "2030-02-01"
    night.mkdir(parents=True)
    for index in range(40):
        (night / f"broken-{index:02d}.png").write_bytes(b"not a png at all")
    result = build(fresh(Nightly, date=day("2030-02-01")))
    assert result.status == LuigiStatusCode.FAILED
    failed = rows(url, "SELECT error FROM runs WHERE task = 'Nightly' AND status = 'failed'")
    assert failed and "40 of 40 rows rejected" in failed[0]["error"]


def test_no_production_model_is_one_line_not_a_traceback(configure, tmp_path):
    config = configure(dataset={"path": str(tmp_path / "nothing")})
    from tests.tasks.support import subprocess_env

    result = subprocess.run(
        [str(Path(os.sys.executable).with_name("luigi")), "--module", "tasks", "Nightly", "--date", "2030-01-01"],
        cwd=REPO_ROOT,
        env=subprocess_env(config),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 30, result.stderr[-2000:]
    assert "no production model yet" in result.stderr and "Traceback" not in result.stderr


def test_a_night_whose_feedback_fails_still_writes_its_report(trained, tmp_path):
    url, examples, config = trained
    second = day(examples.nights[1])
    # The labels that arrive with the second night, under column names the data set does not have.
    feedback = tmp_path / "data" / "feedback" / second.isoformat()
    for file in feedback.glob("*.csv"):
        file.unlink()
    (feedback / "labels.csv").write_text("image_id,digit\nx1,3\n")
    from tests.tasks.support import subprocess_env

    # The command cron's `overnight nightly` runs: Luigi's own exit code, a report all the same.
    result = subprocess.run(
        [str(Path(os.sys.executable).with_name("luigi")), "--module", "tasks", "Nightly", "--date", second.isoformat()],
        cwd=REPO_ROOT,
        env={**subprocess_env(config), "OVERNIGHT_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 30, result.stderr[-3000:]  # [retcode] task_failed, as without the report
    error = rows(url, "SELECT error FROM runs WHERE task = 'IngestFeedback' AND status = 'failed'")[0]["error"]
    production = registry.production(database.connect(url))["version"]
    report = tmp_path / "data" / "09_monitoring" / second.isoformat() / f"report-{production}.html"
    assert report.is_file(), result.stderr[-3000:]
    text = report.read_text()
    assert "<strong>IngestFeedback FAILED</strong>" in text and 'class="banner bad failed"' in text
    assert html.escape(error.splitlines()[0].rstrip("."), quote=True) in text
    # What there is: the night was scored and logged though its labels failed.
    assert f"{PER_NIGHT} rows scored" in text and "Rows per night" in text
    assert scalar(url, "SELECT COUNT(*) FROM predictions WHERE batch_date = :d", d=second) == PER_NIGHT


# Luigi's range logic is the same on both databases (Nightly.bulk_complete reads the markers, which
# every night test checks on both): SQLite alone keeps the suite's minutes for what differs.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backfill_with_luigi_s_range_daily_scores_each_night_and_fails_the_drifted_one(trained):
    from tests.tasks.support import subprocess_env

    url, examples, config = trained
    _, second, shifted = examples.nights
    stop = (day(shifted) + datetime.timedelta(days=1)).isoformat()
    luigi = Path(os.sys.executable).with_name("luigi")
    command = [str(luigi), "--module", "tasks", "RangeDaily", "--of", "Nightly", "--start", second, "--stop", stop]
    command += ["--days-back", "100000", "--workers", "2"]  # RangeDaily ignores nights over 100 days ago
    env = {**subprocess_env(config), "OVERNIGHT_DATABASE_URL": url}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 30, output[-3000:]  # [retcode] task_failed: the drifted night
    assert scalar(url, "SELECT COUNT(*) FROM predictions WHERE batch_date = :d", d=day(second)) == PER_NIGHT
    failed = output[output.index("failed:") :]
    assert f"Nightly(date={shifted}" in failed.split("\n\n")[0], output[-3000:]
    assert scalar(url, "SELECT status FROM batches WHERE batch_date = :d", d=day(second)) == "loaded"
