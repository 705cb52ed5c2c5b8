"""Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pipeline.store import database, resolutions, tables
from pipeline.store.tables import metadata

REPO_ROOT = Path(__file__).resolve().parents[2]

LEDGER_TABLES = {"runs", "run_metrics", "datasets"}
NIGHTLY_TABLES = {"model_versions", "model_events", "batches", "predictions", "feedback", "feature_stats", "drift"}
MARKER_TABLES = {"output_markers"}
LABEL_TABLES = {
    "annotators",
    "annotator_pairs",
    "label_resolutions",
    "night_quality",
    "night_conflicts",
    "annotator_label_pairs",
    "annotator_tallies",
}
ACK_TABLES = {"drift_acknowledgements"}
VIEWS = {
    "drift_alerts",
    "prediction_quality_daily",
    "prediction_quality_by_origin",
    "labeling_queue",
    "resolved_labels",
    "annotator_agreement",
    "label_conflicts_daily",
}
HEAD = "0013"


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _views(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_view_names())


def test_connect_migrates_a_new_database_to_head(database_url):
    assert database.current_revision(database_url) is None

    engine = database.connect(database_url)

    assert _tables(engine) == LEDGER_TABLES | NIGHTLY_TABLES | MARKER_TABLES | LABEL_TABLES | ACK_TABLES | {
        "alembic_version"
    }
    assert _views(engine) == VIEWS
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [HEAD]
    assert database.current_revision(database_url) == HEAD == database.head_revision()


def test_migration_creates_columns_and_indexes(engine):
    inspector = sa.inspect(engine)
    run_columns = {column["name"]: column for column in inspector.get_columns("runs")}
    assert set(run_columns) == {
        "run_id",
        "task",
        "params",
        "version",
        "status",
        "git_commit",
        "git_dirty",
        "data_version",
        "hardware",
        "packages",
        "output_path",
        "rows_in",
        "rows_rejected",
        "error",
        "host",
        "pid",
        "started_at",
        "finished_at",
        "duration_s",
        "cpu_s",
        "peak_memory_mb",
        "gpu_name",
        "gpu_s",
        "cost",
        "heartbeat_at",
    }
    assert run_columns["started_at"]["nullable"] is False
    assert run_columns["finished_at"]["nullable"] is True
    assert {tuple(index["column_names"]) for index in inspector.get_indexes("runs")} == {
        ("task", "started_at"),
        ("status",),
    }
    assert [index["column_names"] for index in inspector.get_indexes("run_metrics")] == [["run_id"]]
    (foreign_key,) = inspector.get_foreign_keys("run_metrics")
    assert foreign_key["referred_table"] == "runs"
    assert foreign_key["options"].get("ondelete", "").upper() == "CASCADE"
    assert {column["name"] for column in inspector.get_columns("datasets")} == {
        "data_version",
        "path",
        "fingerprint",
        "rows",
        "columns",
        "schema",
        "created_at",
    }


def test_schema_module_matches_the_migrations(engine):
    # schema.py is what the code uses, the migration is what the database gets: they must agree.
    # Views are not compared: Alembic reflects tables only (get_table_names excludes views).
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_upgrade_is_idempotent_and_keeps_data(database_url):
    database.upgrade(database_url)
    engine = database.connect(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO datasets (data_version, rows) VALUES (:version, :rows)"), {"version": "d1", "rows": 3}
        )

    database.upgrade(database_url)
    database.upgrade(database_url, HEAD)

    assert database.current_revision(database_url) == HEAD
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT data_version, rows FROM datasets")).all()
    assert [tuple(row) for row in rows] == [("d1", 3)]


def test_downgrade_to_base_and_back(database_url):
    engine = database.connect(database_url)

    # Through env.py's own engine (sqlalchemy.url), the path the alembic CLI would take.
    command.downgrade(database.alembic_config(url=database_url), "base")
    assert database.current_revision(database_url) is None
    assert _tables(engine) & (LEDGER_TABLES | NIGHTLY_TABLES) == set()
    assert _views(engine) == set()

    database.upgrade(database_url)
    assert _tables(engine) >= LEDGER_TABLES | NIGHTLY_TABLES
    assert _views(engine) == VIEWS
    assert database.current_revision(database_url) == HEAD


def test_downgrade_to_0001_keeps_the_ledger(database_url):
    engine = database.connect(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO datasets (data_version, rows) VALUES (:version, :rows)"), {"version": "d1", "rows": 3}
        )

    command.downgrade(database.alembic_config(url=database_url), "0001")
    assert database.current_revision(database_url) == "0001"
    assert _tables(engine) == LEDGER_TABLES | {"alembic_version"}
    assert _views(engine) == set()

    database.upgrade(database_url)
    assert _tables(engine) == LEDGER_TABLES | NIGHTLY_TABLES | MARKER_TABLES | LABEL_TABLES | ACK_TABLES | {
        "alembic_version"
    }
    assert _views(engine) == VIEWS
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM datasets")).scalar_one() == 1


def test_0004_adds_output_markers_and_the_partial_and_missing_nights(database_url):
    engine = database.connect(database_url)
    night = {"d": "2026-11-01", "m": "m1"}
    insert = "INSERT INTO batches (batch_date, model_version, rows_in, status) VALUES (:d, :m, 0, :s)"
    with engine.begin() as connection:
        for status, model in (("partial", "m1"), ("missing", "m2"), ("loaded", "m3")):
            connection.execute(sa.text(insert), {**night, "m": model, "s": status})
    with engine.begin() as connection, _refused():
        connection.execute(sa.text(insert), {**night, "m": "m4", "s": "lost"})

    command.downgrade(database.alembic_config(url=database_url), "0003")
    assert "output_markers" not in _tables(engine)
    with engine.connect() as connection:
        left = connection.execute(sa.text("SELECT status FROM batches")).scalars().all()
    assert left == ["loaded"]  # 0003 knows no partial or missing night
    database.upgrade(database_url)
    assert "output_markers" in _tables(engine)


def test_0005_tells_baseline_figures_from_the_model_s_and_old_rows_are_the_model_s(database_url):
    engine = database.connect(database_url)
    config = database.alembic_config(url=database_url)
    command.downgrade(config, "0004")
    run = (
        "INSERT INTO runs (run_id, task, params, version, status, started_at) "
        "VALUES ('r1', 'T', '{}', 'v', 'succeeded', :t)"
    )
    metric = "INSERT INTO run_metrics (run_id, split, slice, name, value) VALUES ('r1', 'test', '', 'r2', 0.5)"
    with engine.begin() as connection:
        connection.execute(sa.text(run), {"t": "2026-12-01 00:00:00"})
        connection.execute(sa.text(metric))
    database.upgrade(database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO run_metrics (run_id, split, name, value, baseline) "
                "VALUES ('r1', 'test', 'r2', 0.4, 'linear')"
            )
        )
        rows = connection.execute(sa.text("SELECT baseline, value FROM run_metrics ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [("", 0.5), ("linear", 0.4)]


def test_0006_keeps_every_label_as_unknown_s_and_a_downgrade_keeps_the_newest(database_url):
    engine = database.connect(database_url)
    config = database.alembic_config(url=database_url)
    command.downgrade(config, "0005")
    insert = "INSERT INTO feedback (example_id, label, label_value, received_at, source) VALUES (:i, :l, :v, :t, 's')"
    with engine.begin() as connection:
        for example_id, label, value in (("a", "cat", None), ("b", "2", 2.0)):
            connection.execute(sa.text(insert), {"i": example_id, "l": label, "v": value, "t": "2026-11-01 00:00:00"})
    # 0006's own views read `feedback` directly; from 0007 on, labels go through load_feedback.
    database.upgrade(database_url, "0006")
    with engine.begin() as connection:
        kept = connection.execute(sa.text("SELECT example_id, label, annotator FROM feedback ORDER BY 1")).all()
        assert [tuple(row) for row in kept] == [("a", "cat", "unknown"), ("b", "2", "unknown")]
        # A second person's label for `a` is a second row now, not a replacement.
        connection.execute(
            sa.text(
                "INSERT INTO feedback (example_id, label, received_at, source, annotator) "
                "VALUES ('a', 'dog', '2026-11-02 00:00:00', 't', 'bob')"
            )
        )
        resolved = connection.execute(sa.text("SELECT example_id, label, status FROM resolved_labels ORDER BY 1")).all()
    assert [tuple(row) for row in resolved] == [("a", None, "unresolved"), ("b", "2", "unanimous")]
    command.downgrade(config, "0005")
    with engine.connect() as connection:
        back = connection.execute(sa.text("SELECT example_id, label FROM feedback ORDER BY 1")).all()
        quality = connection.execute(sa.text("SELECT count(*) FROM prediction_quality_daily")).scalar_one()
    assert [tuple(row) for row in back] == [("a", "dog"), ("b", "2")] and quality == 0
    database.upgrade(database_url)


def _refused():
    import pytest

    return pytest.raises(sa.exc.IntegrityError)


def test_processes_starting_together_migrate_once(database_url):
    # Four workers open a brand-new database at the same moment: none may fail on
    # "table already exists", and every one can write.
    script = (
        "import sys; from pipeline.store import database, ledger; "
        "engine = database.connect(sys.argv[1]); "
        "ledger.start_run(engine, task='T', params={}, version='v', data_version=None, "
        "output_path='o', repo_dir='.')"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script, database_url], cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0, 0, 0], errors
    engine = database.connect(database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 4
    assert database.current_revision(database_url) == HEAD


def test_0011_splits_each_night_s_quality_by_origin_and_a_downgrade_adds_them_up(database_url):
    engine = database.connect(database_url)
    day = date(2026, 12, 1)
    rows = [
        {"batch_date": day, "example_id": f"e{n}", "model_version": "m", "prediction": "cat", "score": 0.9}
        | {"origin": origin, "probabilities": None}
        for n, origin in enumerate(["batch", "batch", "online"])
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(tables.predictions), rows)
        connection.execute(sa.insert(tables.feedback), [{"example_id": "e0", "label": "cat", "annotator": "a"}])
        resolutions.rebuild(connection)
    quality = sa.text("SELECT predicted, labeled FROM prediction_quality_daily")
    by_origin = sa.text("SELECT origin, predicted FROM prediction_quality_by_origin ORDER BY origin")

    command.downgrade(database.alembic_config(url=database_url), "0010")
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(quality)] == [(3, 1)]
    database.upgrade(database_url)
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(quality)] == [(3, 1)]
        assert [tuple(row) for row in connection.execute(by_origin)] == [("batch", 2)]  # online: no label
