"""A row-level fault stays one row's on both databases: a NUL character in a night's Parquet, an
over-long or NUL id in a labeller's file. The row goes to the rejects with its reason; the rest loads."""

from __future__ import annotations

import datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from luigi.execution_summary import LuigiStatusCode

from pipeline.common.columns import REASON
from pipeline.store import database
from tasks import IngestFeedback, Nightly, RegisterModel
from tests.tasks.support import build, fresh

NIGHT = datetime.date(2026, 11, 3)


@pytest.fixture
def tabular_model(configure, tabular_csv, database_url, tmp_path):
    table = pd.read_csv(tabular_csv)
    table.insert(0, "id", [f"r{index:04d}" for index in range(len(table))])
    raw = tmp_path / "raw" / "with_ids.csv"
    table.to_csv(raw, index=False)
    configure(database_url=database_url, dataset={"path": str(raw), "id_column": "id"})
    assert build(RegisterModel()).status == LuigiStatusCode.SUCCESS
    return database_url, table


def _count(url: str, sql: str, **params) -> int:
    with database.connect(url).connect() as connection:
        return connection.execute(sa.text(sql), params).scalar()


def test_a_nul_in_a_night_s_parquet_and_bad_late_labels_reject_their_rows_only(tabular_model, tmp_path):
    url, table = tabular_model
    night = table.drop(columns="label").head(20).assign(id=lambda rows: "n" + rows["id"])
    night.loc[3, "colour"] = "re\x00d"  # PostgreSQL cannot store it: one row, not the night
    night.loc[5, "id"] = "n\x00005"
    incoming = tmp_path / "data" / "incoming" / NIGHT.isoformat()
    incoming.mkdir(parents=True)
    night.astype({"size": "float64", "weight": "float64"}).to_parquet(incoming / "night.parquet")
    feedback = tmp_path / "data" / "feedback" / NIGHT.isoformat()
    feedback.mkdir(parents=True)
    # (A NUL byte in a CSV refuses the file whole, as a zero-filled file a crash left would be.)
    pd.DataFrame({"id": [night.loc[0, "id"], "x" * 300, night.loc[2, "id"]], "label": "big"}).to_csv(
        feedback / "labels.csv", index=False
    )

    assert build(fresh(Nightly, date=NIGHT)).status == LuigiStatusCode.SUCCESS
    assert _count(url, "SELECT COUNT(*) FROM predictions WHERE batch_date = :d", d=NIGHT) == 18
    assert _count(url, "SELECT rows_rejected FROM batches WHERE batch_date = :d", d=NIGHT) == 2
    assert _count(url, "SELECT COUNT(*) FROM feedback") == 2
    rejected = fresh(IngestFeedback, date=NIGHT).output().path
    assert pd.read_csv(f"{rejected}/rejects.csv")[REASON].tolist() == ["expected an id of at most 200 characters"]
    rejects = pd.read_csv(next((tmp_path / "data" / "08_prediction" / NIGHT.isoformat()).glob("*/rejects.csv")))
    assert sorted(rejects[REASON]) == [
        "colour: expected text without NUL characters",
        "id: expected an id without NUL characters",
    ]
