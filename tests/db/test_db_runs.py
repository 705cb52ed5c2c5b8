"""Cost accounting in the ledger and the queries behind `overnight runs/show/compare`
(pipeline.store.runs), on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.common.metrics import Metric
from pipeline.store import ledger, runs
from pipeline.store.tables import runs as runs_table

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)


def _start(engine: sa.Engine, task: str = "TrainModel", **overrides) -> str:
    arguments = {
        "task": task,
        "params": {"epochs": "3", "architecture": "mlp"},
        "version": "abc123",
        "data_version": "data-1",
        "output_path": "data/05_training/abc123",
        "repo_dir": REPO_ROOT,
    }
    return ledger.start_run(engine, **{**arguments, **overrides})


def _set_started(engine: sa.Engine, run_id: str, started_at: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(sa.update(runs_table).where(runs_table.c.run_id == run_id).values(started_at=started_at))


def _insert_run(engine: sa.Engine, run_id: str, **values) -> None:
    row = {"run_id": run_id, "task": "TrainModel", "status": "succeeded", "started_at": T0, **values}
    with engine.begin() as connection:
        connection.execute(sa.insert(runs_table), row)


def _row(engine: sa.Engine, run_id: str):
    with engine.connect() as connection:
        return connection.execute(sa.select(runs_table).where(runs_table.c.run_id == run_id)).one()


# --- cost accounting ----------------------------------------------------------------------------


def test_cost_columns_round_trip(engine):
    _insert_run(
        engine, "r1", cpu_s=12.5, peak_memory_mb=2048.0, gpu_name="NVIDIA H100 80GB HBM3", gpu_s=30.25, cost=1.75
    )
    _insert_run(engine, "r2")

    first, second = _row(engine, "r1"), _row(engine, "r2")

    assert (first.cpu_s, first.peak_memory_mb, first.gpu_name, first.gpu_s, first.cost) == (
        12.5,
        2048.0,
        "NVIDIA H100 80GB HBM3",
        30.25,
        1.75,
    )
    assert (second.cpu_s, second.peak_memory_mb, second.gpu_name, second.gpu_s, second.cost) == (
        None,
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_finish_run_stores_resources_in_the_same_update(engine, status):
    run_id = _start(engine)

    ledger.finish_run(
        engine,
        run_id,
        status=status,
        metrics=[Metric("accuracy", 0.9, "test")],
        error="boom" if status == "failed" else None,
        cpu_s=3.5,
        peak_memory_mb=512.25,
        gpu_name="NVIDIA A100",
        gpu_s=4.0,
        cost=0.125,
    )

    row = _row(engine, run_id)
    assert row.status == status
    assert (row.cpu_s, row.peak_memory_mb, row.gpu_name, row.gpu_s, row.cost) == (
        3.5,
        512.25,
        "NVIDIA A100",
        4.0,
        0.125,
    )


def test_finish_run_without_resources_leaves_them_null_and_nan_is_null(engine):
    plain, odd = _start(engine), _start(engine)

    ledger.finish_run(engine, plain, status="succeeded")
    ledger.finish_run(engine, odd, status="succeeded", cpu_s=math.nan, cost=math.inf, gpu_name="G" * 300)

    row = _row(engine, plain)
    assert (row.cpu_s, row.peak_memory_mb, row.gpu_name, row.gpu_s, row.cost) == (None,) * 5
    row = _row(engine, odd)
    assert (row.cpu_s, row.cost, len(row.gpu_name)) == (None, None, 200)


def test_estimate_cost_prices_wall_and_gpu_hours():
    assert ledger.estimate_cost(1800.0) == 0.0
    assert ledger.estimate_cost(1800.0, price_per_hour=2.0) == pytest.approx(1.0)
    assert ledger.estimate_cost(3600.0, 1800.0, price_per_hour=0.5, gpu_price_per_hour=3.0) == pytest.approx(2.0)
    assert ledger.estimate_cost(3600.0, None, price_per_hour=1.0, gpu_price_per_hour=3.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="price_per_hour"):
        ledger.estimate_cost(1.0, price_per_hour=-1.0)
    with pytest.raises(ValueError, match="gpu_s"):
        ledger.estimate_cost(1.0, math.nan)


# --- listing --------------------------------------------------------------------------------


def _three_runs(engine: sa.Engine) -> dict[str, str]:
    """oldest: TrainModel succeeded (headline 0.8); middle: EvaluateModel failed; newest: running."""
    trained = _start(engine, "TrainModel", data_version="d" * 64)
    ledger.finish_run(
        engine,
        trained,
        status="succeeded",
        cost=0.5,
        cpu_s=2.0,
        metrics=[
            Metric("headline", 0.8, "test"),
            # Not the headline: another split, a slice, an epoch.
            Metric("headline", 0.1, "validation"),
            Metric("headline", 0.2, "test", slice="island=north"),
            Metric("headline", 0.3, "test", epoch=1),
        ],
    )
    evaluated = _start(engine, "EvaluateModel")
    ledger.finish_run(engine, evaluated, status="failed", error="boom")
    running = _start(engine, "TrainModel")
    for offset, run_id in enumerate((trained, evaluated, running)):
        _set_started(engine, run_id, T0 + timedelta(minutes=offset))
    return {"trained": trained, "evaluated": evaluated, "running": running}


def test_list_runs_newest_first_with_the_headline(engine):
    ids = _three_runs(engine)

    listed = runs.list_runs(engine)

    assert [row["run_id"] for row in listed] == [ids["running"], ids["evaluated"], ids["trained"]]
    assert [row["headline"] for row in listed] == [None, None, 0.8]
    trained = listed[2]
    assert set(trained) == set(runs.LISTED_COLUMNS)
    assert trained["status"] == "succeeded" and trained["data_version"] == "d" * 64
    assert (trained["cost"], trained["cpu_s"]) == (0.5, 2.0)
    assert trained["started_at"] == T0 and trained["duration_s"] >= 0


def test_list_runs_filters_by_task_status_and_limit(engine):
    ids = _three_runs(engine)

    assert [row["run_id"] for row in runs.list_runs(engine, task="TrainModel")] == [ids["running"], ids["trained"]]
    assert [row["run_id"] for row in runs.list_runs(engine, status="failed")] == [ids["evaluated"]]
    assert [row["run_id"] for row in runs.list_runs(engine, task="TrainModel", status="succeeded")] == [ids["trained"]]
    assert [row["run_id"] for row in runs.list_runs(engine, limit=1)] == [ids["running"]]
    assert runs.list_runs(engine, task="NoSuchTask") == []
    with pytest.raises(ValueError, match="limit"):
        runs.list_runs(engine, limit=0)


# --- lookup by prefix ---------------------------------------------------------------------------


def test_find_run_id_by_full_id_or_unique_prefix(engine):
    for run_id in ("abc100", "abc200", "abd300", "a_b400", "axb500"):
        _insert_run(engine, run_id)

    assert runs.find_run_id(engine, "abc100") == "abc100"
    assert runs.find_run_id(engine, "abc1") == "abc100"
    assert runs.find_run_id(engine, "abd") == "abd300"
    assert runs.find_run_id(engine, " abd3 ") == "abd300"
    assert runs.find_run_id(engine, "a_") == "a_b400"  # "_" is no wildcard


def test_find_run_id_ambiguous_unknown_or_empty(engine):
    for run_id in ("abc100", "abc200", "abd300"):
        _insert_run(engine, run_id)

    with pytest.raises(runs.RunNotFound, match="'abc' matches several runs .*abc100, abc200"):
        runs.find_run_id(engine, "abc")
    with pytest.raises(runs.RunNotFound, match="no run id starts with 'zz'"):
        runs.find_run_id(engine, "zz")
    with pytest.raises(runs.RunNotFound, match="no run id starts with '%'"):
        runs.find_run_id(engine, "%")
    with pytest.raises(runs.RunNotFound, match="give a run id"):
        runs.find_run_id(engine, "  ")


def test_find_run_id_prefers_an_exact_match(engine):
    _insert_run(engine, "abc")
    _insert_run(engine, "abcd")

    assert runs.find_run_id(engine, "abc") == "abc"


# --- details and comparison -----------------------------------------------------------------


def test_run_details_organises_metrics_and_lists_files(engine, tmp_path):
    output = tmp_path / "05_training" / "v1"
    (output / "logs").mkdir(parents=True)
    (output / "model.keras").write_bytes(b"x" * 10)
    (output / "logs" / "events").write_text("e")
    ledger.record_dataset(
        engine, data_version="data-1", path="raw.csv", fingerprint="f", rows=240, columns=["a"], schema={"a": "numeric"}
    )
    run_id = _start(engine, output_path=output)
    ledger.finish_run(
        engine,
        run_id,
        status="succeeded",
        cpu_s=1.0,
        metrics=[
            Metric("loss", 0.9, "train", epoch=1),
            Metric("loss", 0.4, "train", epoch=2),
            Metric("loss", 0.5, "train", epoch=3),
            Metric("accuracy", 0.6, "validation", epoch=1),
            Metric("accuracy", math.nan, "validation", epoch=2),
            Metric("accuracy", 0.7, "validation", epoch=3),
            Metric("accuracy", 0.75, "test"),
            Metric("accuracy", 0.5, "test", slice="island=north"),
        ],
    )

    details = runs.run_details(engine, run_id)

    assert details["run_id"] == run_id and details["params"] == {"epochs": "3", "architecture": "mlp"}
    assert details["cpu_s"] == 1.0 and set(details["hardware"]) >= {"platform", "gpus"}
    assert details["dataset"]["rows"] == 240
    assert details["files"] == [{"path": "logs/events", "bytes": 1}, {"path": "model.keras", "bytes": 10}]
    assert details["files_total"] == 2
    metrics = details["metrics"]
    assert metrics["final"] == [{"split": "test", "name": "accuracy", "value": 0.75}]
    assert metrics["slices"] == [{"split": "test", "slice": "island=north", "name": "accuracy", "value": 0.5}]
    assert metrics["history"] == [
        {
            "split": "train",
            "slice": "",
            "name": "loss",
            "epochs": 3,
            "first": 0.9,
            "last": 0.5,
            "best": 0.4,
            "best_epoch": 2,
        },  # lower is better
        {
            "split": "validation",
            "slice": "",
            "name": "accuracy",
            "epochs": 3,
            "first": 0.6,
            "last": 0.7,
            "best": 0.7,
            "best_epoch": 3,
        },  # higher is better; the NULL epoch is skipped
    ]
    with pytest.raises(runs.RunNotFound):
        runs.run_details(engine, "0" * 32)


def test_compare_parameter_differences_and_metric_deltas(engine):
    a = _start(engine, params={"epochs": "3", "architecture": "mlp", "learning_rate": "0.001"}, data_version="data-1")
    b = _start(engine, params={"epochs": "30", "architecture": "mlp", "seed": "7"}, data_version="data-2")
    ledger.finish_run(
        engine,
        a,
        status="succeeded",
        metrics=[
            Metric("accuracy", 0.75, "test"),
            Metric("log_loss", 0.5, "test"),
            Metric("accuracy", 0.7, "validation"),
            Metric("loss", 0.1, "train", epoch=1),  # history: not compared
            Metric("accuracy", 0.6, "test", slice="island=north"),
        ],
    )
    ledger.finish_run(
        engine,
        b,
        status="succeeded",
        metrics=[
            Metric("accuracy", 0.8, "test"),
            Metric("log_loss", 0.25, "test"),
            Metric("f1_macro", 0.5, "test"),
            Metric("accuracy", 0.9, "test", slice="island=north"),
        ],
    )

    comparison = runs.compare_runs(runs.run_details(engine, a), runs.run_details(engine, b))

    assert comparison["a"]["run_id"] == a and comparison["b"]["run_id"] == b
    assert comparison["parameters"] == [
        {"name": "epochs", "a": "3", "b": "30", "only_in": None},
        {"name": "learning_rate", "a": "0.001", "b": None, "only_in": "a"},
        {"name": "seed", "a": None, "b": "7", "only_in": "b"},
    ]
    by_key = {(item["split"], item["slice"], item["name"]): item for item in comparison["metrics"]}
    assert list(by_key) == [
        ("validation", "", "accuracy"),
        ("test", "", "accuracy"),
        ("test", "", "f1_macro"),
        ("test", "", "log_loss"),
        ("test", "island=north", "accuracy"),
    ]
    assert by_key[("test", "", "accuracy")]["delta"] == pytest.approx(0.05)
    assert by_key[("test", "", "log_loss")]["delta"] == pytest.approx(-0.25)
    assert by_key[("test", "island=north", "accuracy")]["delta"] == pytest.approx(0.3)
    assert by_key[("test", "", "f1_macro")] == {
        "split": "test",
        "slice": "",
        "name": "f1_macro",
        "a": None,
        "b": 0.5,
        "delta": None,
    }
    assert by_key[("validation", "", "accuracy")]["b"] is None
    assert comparison["data_version"] == {"a": "data-1", "b": "data-2"}
    assert "git" not in comparison  # same checkout

    rows = runs.comparison_rows(comparison)
    assert {row["kind"] for row in rows} == {"parameter", "metric", "data_version"}


def test_compare_identical_runs_shows_no_differences(engine):
    a, b = _start(engine), _start(engine)
    for run_id in (a, b):
        ledger.finish_run(engine, run_id, status="succeeded", metrics=[Metric("accuracy", 0.5, "test")])

    comparison = runs.compare_runs(runs.run_details(engine, a), runs.run_details(engine, b))

    assert comparison["parameters"] == []
    assert comparison["metrics"] == [
        {"split": "test", "slice": "", "name": "accuracy", "a": 0.5, "b": 0.5, "delta": 0.0}
    ]
    assert "data_version" not in comparison and "git" not in comparison
