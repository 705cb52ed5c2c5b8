"""Data quality in SQL: a night with repeated ids alerts on the id column in `drift_alerts`, with
its share in `feature_stats`, on SQLite and PostgreSQL; a clean night of the same data does not."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from luigi.execution_summary import LuigiStatusCode

from pipeline.store import database
from tasks import Nightly, RegisterModel
from tests.tasks.support import build, fresh

CLEAN, REPEATED = datetime.date(2026, 11, 3), datetime.date(2026, 11, 4)


def _rows(count: int, seed: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.normal(10, 3, count).round(3)
    return pd.DataFrame(
        {
            "id": [f"r{index:05d}" for index in range(start, start + count)],
            "size": size,
            "colour": rng.choice(["red", "green", "blue"], count),
            "label": np.where(size > 10, "big", "small"),
        }
    )


@pytest.fixture
def customers(configure, tmp_path, database_url):
    raw = tmp_path / "raw" / "customers.csv"
    raw.parent.mkdir(parents=True)
    _rows(300, 0).to_csv(raw, index=False)
    configure(database_url=database_url, dataset={"path": str(raw), "id_column": "id"})
    result = build(RegisterModel())
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    for date, repeats in ((CLEAN, 0), (REPEATED, 20)):
        night = _rows(200, date.day, start=10_000).drop(columns="label")
        night = pd.concat([night, night.iloc[:repeats]], ignore_index=True)  # 20 ids sent twice
        folder = tmp_path / "data" / "incoming" / date.isoformat()
        folder.mkdir(parents=True)
        night.to_csv(folder / "night.csv", index=False)
    return database_url


def _query(url: str, sql: str, **params) -> list[dict]:
    with database.connect(url).connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(sql), params)]


def test_repeated_ids_alert_on_the_id_column_in_sql_and_a_clean_night_stays_quiet(customers):
    assert build(fresh(Nightly, date=CLEAN)).status == LuigiStatusCode.SUCCESS
    assert build(fresh(Nightly, date=REPEATED)).status == LuigiStatusCode.FAILED  # the drift alert

    alerts = _query(customers, "SELECT batch_date, feature, method, score FROM drift_alerts")
    assert [(a["feature"], a["method"]) for a in alerts] == [("id", "duplicate_id")]
    assert alerts[0]["score"] == pytest.approx(20 / 220)
    shares = _query(
        customers,
        "SELECT batch_date, batch_value FROM feature_stats WHERE statistic = 'duplicate_id_share' ORDER BY batch_date",
    )
    assert [row["batch_value"] for row in shares] == pytest.approx([0.0, 20 / 220])
    rejected = _query(customers, "SELECT rows_rejected FROM batches WHERE batch_date = :d", d=REPEATED)
    assert rejected == [{"rows_rejected": 20}]
