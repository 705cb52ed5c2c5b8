"""One data folder, two databases: every row and every alert in each, none lost to the other.

The move docs/registry.md describes: the demo's folder on SQLite, then the same folder with a fresh PostgreSQL
database. Tasks whose product includes rows (registration, a night's drift figures, late labels,
the night's all-clear) are complete only in the database that holds their marker.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from luigi.execution_summary import LuigiStatusCode

from pipeline.examples import write_examples
from pipeline.store import database
from tasks import Nightly, RegisterModel
from tests.conftest import _postgres_schema_url
from tests.tasks.support import build, fresh

pytestmark = pytest.mark.slow
SUCCEEDED = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
PER_NIGHT = 30
COUNTED = ("predictions", "feedback", "drift", "feature_stats", "batches")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema_url()


def counts(url: str) -> dict:
    """Rows per table and night: what each database must hold alike."""
    with database.connect(url).connect() as connection:
        return {
            table: sorted(
                (str(night), count)
                for night, count in connection.execute(
                    sa.text(f"SELECT batch_date, COUNT(*) FROM {table} GROUP BY batch_date")
                )
            )
            if table != "feedback"
            else connection.execute(sa.text("SELECT COUNT(*) FROM feedback")).scalar()
            for table in COUNTED
        }


def run_nights(nights: list[str]) -> dict[str, LuigiStatusCode]:
    return {night: build(fresh(Nightly, date=datetime.date.fromisoformat(night))).status for night in nights}


def test_a_second_database_on_the_same_folder_gets_every_row_and_keeps_every_alert(configure, tmp_path, postgres_url):
    data = tmp_path / "data"
    examples = write_examples(data, nights=3, per_night=PER_NIGHT)
    nights = [*examples.nights, examples.feedback_dates[-1]]  # the last: an empty night bringing labels
    sqlite_url = f"sqlite:///{data / 'overnight.db'}"
    settings = {"dataset": {"path": str(data / "raw" / "digits")}, "TrainModel": {"architecture": "cnn", "epochs": "2"}}

    configure(database_url=sqlite_url, **settings)
    assert build(RegisterModel()).status in SUCCEEDED
    on_sqlite = run_nights(nights)
    shifted = examples.nights[-1]
    assert on_sqlite[shifted] == LuigiStatusCode.FAILED  # the shifted night alerts
    assert all(status in SUCCEEDED for night, status in on_sqlite.items() if night != shifted)

    configure(database_url=postgres_url, **settings)
    assert build(fresh(RegisterModel)).status in SUCCEEDED  # registered in PostgreSQL too, from the folder
    with database.connect(postgres_url).connect() as connection:
        stages = connection.execute(sa.text("SELECT stage FROM model_versions")).scalars().all()
    assert stages == ["production"]
    on_postgres = run_nights(nights)
    assert on_postgres == on_sqlite
    assert counts(postgres_url) == counts(sqlite_url)
    assert counts(postgres_url)["predictions"] == [(night, PER_NIGHT) for night in examples.nights]
    report = (data / "09_monitoring" / shifted).glob("report-*.html")
    assert "DRIFT ALERT" in next(report).read_text()

    configure(database_url=sqlite_url, **settings)  # and back: the alert is still there
    assert run_nights([shifted]) == {shifted: LuigiStatusCode.FAILED}
    with database.connect(sqlite_url).connect() as connection:
        alerts = connection.execute(sa.text("SELECT COUNT(*) FROM drift_alerts WHERE batch_date = :d"), {"d": shifted})
        assert alerts.scalar() > 0
