"""The tables migrations 0007 and 0009 maintain (label_resolutions, night_quality, night_conflicts;
annotator_tallies, annotator_label_pairs) say what 0006's views computed from every label, on both
backends: after ties, a tie order that changes, an annotator who relabels, several annotators, a
night loaded again; and after the upgrade's backfill. 0006's view SQL is run beside them as
`old_*` views, so the reference is the shipped rule itself, not a copy of it; the pair counts and
kappa are checked against pandas and scikit-learn over the labels stored."""

from __future__ import annotations

import importlib.util
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from sklearn.metrics import cohen_kappa_score

from pipeline.stages.agreement import confusion_counts, pair_agreement
from pipeline.store import annotator_counts, database, labels, prediction_log, resolutions
from pipeline.store.tables import annotator_label_pairs, annotator_pairs, feedback
from tests.db.support import register_model

MIGRATIONS = Path(__file__).resolve().parents[2] / "pipeline" / "store" / "migrations" / "versions"
NIGHTS = [date(2026, 3, 1) + timedelta(days=offset) for offset in range(3)]
CLASSES = ("cat", "dog", "bird")
COMPARED = {
    "resolved_labels": "example_id",
    "prediction_quality_daily": "batch_date, model_version",
    "label_conflicts_daily": "batch_date, model_version, predicted_class",
    "annotator_agreement": "annotator",
}


def _migration_0006():
    spec = importlib.util.spec_from_file_location("migration_0006", MIGRATIONS / "0006_annotators.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _create_old_views(engine) -> None:
    """0006's views under old_* names, reading old_resolved_labels."""
    with engine.begin() as connection:
        for name, sql in _migration_0006().VIEWS.items():
            if name == "labeling_queue":
                continue
            sql = sql.replace(f"CREATE VIEW {name} AS", f"CREATE VIEW old_{name} AS")
            connection.exec_driver_sql(sql.replace("JOIN resolved_labels ", "JOIN old_resolved_labels "))


def _rows(connection, view: str) -> list[tuple]:
    rows = connection.exec_driver_sql(f"SELECT * FROM {view} ORDER BY {COMPARED[view.removeprefix('old_')]}").all()
    return [tuple(_plain(value) for value in row) for row in rows]


def _cells(connection) -> list[tuple]:
    table = annotator_label_pairs
    return [tuple(row) for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))]


def _plain(value):
    """Floats to 9 places (SUM / COUNT against AVG), timestamps as text, counts as int."""
    if isinstance(value, float):
        return round(value, 9)
    if hasattr(value, "isoformat"):
        return str(value)[:19]
    return int(value) if hasattr(value, "as_integer_ratio") and not isinstance(value, bool) else value


def _assert_same_as_0006(engine) -> None:
    with engine.connect() as connection:
        for view in COMPARED:
            new, old = _rows(connection, view), _rows(connection, f"old_{view}")
            assert new == old, view
            assert new, f"{view} is empty: the data tries nothing"
    _assert_pairs_counted_from_every_label(engine)


def _assert_pairs_counted_from_every_label(engine) -> None:
    """The pair cells the loads kept equal a count over every stored label, and kappa equals
    scikit-learn's on the examples each two annotators share."""
    with engine.connect() as connection:
        stored = pd.DataFrame(connection.execute(sa.select(feedback)).mappings().all())
        cells = pd.DataFrame(connection.execute(sa.select(annotator_label_pairs)).mappings().all())
        pairs = pd.DataFrame(connection.execute(sa.select(annotator_pairs)).mappings().all())
    expected = confusion_counts(stored[["example_id", "annotator", "label"]])
    key = ["annotator", "other", "label", "other_label"]
    assert not cells.empty
    pd.testing.assert_frame_equal(
        cells.sort_values(key, ignore_index=True), expected.sort_values(key, ignore_index=True), check_dtype=False
    )
    wide = stored.pivot(index="example_id", columns="annotator", values="label")
    for row in pairs.itertuples():
        both = wide[[row.annotator, row.other]].dropna()
        assert row.overlap == len(both)
        if row.kappa is None or pd.isna(row.kappa):
            assert both[row.annotator].nunique() == 1 and set(both[row.annotator]) == set(both[row.other])
        else:
            assert row.kappa == pytest.approx(cohen_kappa_score(both[row.annotator], both[row.other]), abs=1e-9)
    shared = {tuple(sorted(pair)) for pair in zip(cells["annotator"], cells["other"])}
    assert len(pairs) == 2 * len(shared)


def _predict(engine, night: date, model: str, ids: list[str], predicted: list[str], scores=None) -> None:
    frame = pd.DataFrame({"example_id": ids, "prediction": predicted, "score": scores or [0.6] * len(ids)})
    frame["probabilities"] = json.dumps({"cat": 0.6})
    prediction_log.load_batch(
        engine, batch_date=night, model_version=model, predictions=frame, rows_in=len(ids), rows_rejected=0
    )


def _label(engine, rows: list[tuple[str, str, str]], tie_order=None) -> None:
    """rows: (example_id, annotator, label)."""
    frame = pd.DataFrame(rows, columns=["example_id", "annotator", "label"])
    labels.load_feedback(engine, frame, source="test.csv", tie_order=tie_order, pair_agreement=pair_agreement)


@pytest.fixture
def night_engine(engine):
    _create_old_views(engine)
    register_model(engine, "m1", "classification")
    register_model(engine, "r1", "regression")
    rng = np.random.default_rng(3)
    for index, night in enumerate(NIGHTS):
        ids = [f"n{index}-{k:02d}" for k in range(24)]
        _predict(engine, night, "m1", ids, list(rng.choice(CLASSES, len(ids))))
        _predict(engine, night, "r1", ids, ["0"] * len(ids), [float(v) for v in rng.random(len(ids)) * 3])
    # Example n0-00 is scored again on the last night: its label counts on both nights.
    _predict(engine, NIGHTS[-1], "m2", ["n0-00", "n2-00"], ["cat", "dog"])
    return engine


def _random_labels(seed: int, annotators=("ann", "bob", "cy")) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(len(NIGHTS)):
        for k in range(24):
            for annotator in annotators:
                if rng.random() < 0.6:
                    rows.append((f"n{index}-{k:02d}", annotator, str(rng.choice(["0", "1", "2.5", "cat", "dog"]))))
    return rows


def test_ties_and_several_annotators_match_0006(night_engine):
    engine = night_engine
    _label(engine, _random_labels(1), tie_order=("bob",))
    # Ties on purpose: two against two, one with a ranked annotator and one without.
    _label(engine, [("n1-00", "ann", "cat"), ("n1-00", "bob", "dog"), ("n1-01", "ann", "cat"), ("n1-01", "cy", "dog")])
    _assert_same_as_0006(engine)
    with engine.connect() as connection:
        statuses = set(connection.exec_driver_sql("SELECT DISTINCT status FROM resolved_labels").scalars())
    assert statuses == {"unanimous", "majority", "tie_broken", "unresolved"}


def test_a_change_of_tie_order_resolves_old_ties_again(night_engine):
    engine = night_engine
    _label(engine, _random_labels(2), tie_order=("ann",))
    _assert_same_as_0006(engine)
    _label(engine, [("n2-03", "dee", "bird")], tie_order=("cy", "bob"))  # ann loses her rank
    _assert_same_as_0006(engine)
    _label(engine, [("n2-04", "dee", "bird")], tie_order=())  # no tie-break at all
    _assert_same_as_0006(engine)


def test_a_relabel_by_the_same_annotator_replaces_their_vote(night_engine):
    engine = night_engine
    _label(engine, [("n0-00", "ann", "cat"), ("n0-00", "bob", "dog"), ("n0-00", "cy", "dog")], tie_order=("ann",))
    _label(engine, [("n0-00", "bob", "cat")])  # now cat, cat, dog
    _assert_same_as_0006(engine)
    with engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT label, status, agreeing, distinct_labels FROM resolved_labels WHERE example_id = 'n0-00'"
        ).one()
    assert tuple(row) == ("cat", "majority", 2, 2)


def test_a_night_loaded_again_keeps_its_labels_counted(night_engine):
    engine = night_engine
    _label(engine, _random_labels(4), tie_order=("cy",))
    _predict(engine, NIGHTS[0], "m1", [f"n0-{k:02d}" for k in range(12)], ["dog"] * 12)  # a rerun, fewer rows
    _assert_same_as_0006(engine)


def test_rebuild_matches_what_the_loads_kept(night_engine):
    engine = night_engine
    _label(engine, _random_labels(5), tie_order=("bob", "ann"))
    with engine.connect() as connection:
        kept = {view: _rows(connection, view) for view in COMPARED}
        kept_cells = _cells(connection)
    with engine.begin() as connection:
        resolutions.rebuild(connection)
        annotator_counts.rebuild(connection)
    with engine.connect() as connection:
        assert {view: _rows(connection, view) for view in COMPARED} == kept
        assert _cells(connection) == kept_cells


def test_the_upgrade_fills_the_tables_and_the_downgrade_restores_0006(database_url):
    engine = database.connect(database_url)
    config = database.alembic_config(url=database_url)
    register_model(engine, "m1", "classification")
    _predict(engine, NIGHTS[0], "m1", [f"n0-{k:02d}" for k in range(24)], ["cat", "dog", "bird"] * 8)
    _label(engine, [(e, a, label) for e, a, label in _random_labels(6) if e.startswith("n0-")], tie_order=("ann",))
    with engine.connect() as connection:
        before = {view: _rows(connection, view) for view in COMPARED}
        cells = _cells(connection)

    command.downgrade(config, "0006")
    assert not {"label_resolutions", "night_quality", "night_conflicts"} & set(sa.inspect(engine).get_table_names())
    with engine.connect() as connection:
        assert {view: _rows(connection, view) for view in COMPARED} == before  # 0006's views, same answers
        definition = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'resolved_labels'"
            if engine.dialect.name == "sqlite"
            else "SELECT definition FROM pg_views WHERE viewname = 'resolved_labels' AND schemaname = current_schema()"
        ).scalar_one()
    assert "PARTITION BY" in definition.upper()

    database.upgrade(database_url, "0007")  # the backfill, from the labels and predictions kept
    with engine.connect() as connection:
        assert {view: _rows(connection, view) for view in COMPARED} == before
    database.upgrade(database_url)  # 0009 counts the labels kept
    with engine.connect() as connection:
        assert {view: _rows(connection, view) for view in COMPARED} == before
        assert _cells(connection) == cells


def test_a_night_s_reads_use_indexes_on_sqlite(tmp_path):
    engine = database.connect(f"sqlite:///{tmp_path / 'plan.db'}")
    queries = (
        "SELECT * FROM prediction_quality_daily WHERE batch_date IN ('2026-03-01', '2026-03-02')",
        "SELECT * FROM label_conflicts_daily WHERE batch_date = '2026-03-01'",
        "SELECT * FROM resolved_labels WHERE example_id = 'x'",
    )
    with engine.connect() as connection:
        for query in queries:
            plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}")]
            # A SCAN of a subquery's few rows (a night's origins, summed) is no SCAN of a table.
            subqueries = {step.split()[1] for step in plan if step.startswith("CO-ROUTINE")}
            scans = [step for step in plan if step.startswith("SCAN") and step.split()[1] not in subqueries]
            assert plan and not scans and any(step.startswith("SEARCH") for step in plan), plan
