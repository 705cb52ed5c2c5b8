"""Daily nights of flights (issue 26), on SQLite and PostgreSQL: the weekday and the month are one
value per night by construction. The first night fails naming both and suggests a policy; the
policy and an acknowledgement make the next nights pass, their alerts still stored and shown; a
real shift on another feature still fails its night, and an ended acknowledgement covers nothing."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from luigi.execution_summary import LuigiStatusCode

from pipeline.artifacts.monitoring import DriftFolder
from pipeline.store import database, online_log, registry
from tasks import Nightly, RegisterModel
from tests.tasks.support import build, fresh

CARRIERS = ("AA", "DL", "UA", "WN", "B6")
ORIGINS = ("ATL", "ORD", "DFW", "DEN", "LAX", "SEA")
ROWS_PER_DAY = 20
NIGHT_ROWS = 300
APRIL_6 = datetime.date(2026, 4, 6)
JULY = [datetime.date(2026, 7, day) for day in range(1, 5)]


def flights(days, rng: np.random.Generator, *, carriers=(0.3, 0.25, 0.2, 0.15, 0.1), distance_shift=0.0):
    """Scheduled flights of the given days: carrier, origin, distance, hour, weekday and month."""
    days = pd.DatetimeIndex(days)
    table = pd.DataFrame(
        {
            "flight_id": [f"{day:%Y%m%d}-{index}" for index, day in enumerate(days)],
            "flight_date": days.strftime("%Y-%m-%d"),
            "carrier": rng.choice(CARRIERS, len(days), p=carriers),
            "origin": rng.choice(ORIGINS, len(days)),
            "distance": (rng.lognormal(6.5, 0.5, len(days)) + distance_shift).round(),
            "hour": rng.integers(6, 23, len(days)),
            "weekday": days.weekday,
            "month": days.month,
        }
    )
    risk = 0.4 * (table["hour"] > 17) + 0.3 * (table["carrier"] == "B6") + rng.uniform(0, 0.6, len(days))
    table["late"] = np.where(risk > 0.6, "late", "on time")
    return table


def _overnight(*arguments: str):
    from tasks.cli import main

    return CliRunner().invoke(main, list(arguments), catch_exceptions=False)


@pytest.fixture
def nights(configure, database_url, tmp_path):
    """A model of January to March; night(date, **shift) runs Nightly on a generated night."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw" / "flights.csv"
    raw.parent.mkdir(parents=True)
    flights(pd.date_range("2026-01-01", "2026-03-31", freq="D").repeat(ROWS_PER_DAY), rng).to_csv(raw, index=False)
    sections = {
        "dataset": {
            "path": str(raw),
            "label": "late",
            "id_column": "flight_id",
            "time_column": "flight_date",
            "kinds": "flight_date:datetime",
        },
        "TrainModel": {"architecture": "mlp", "epochs": "1", "batch_size": "64"},
    }
    configure(database_url, **sections)
    trained = build(RegisterModel())
    assert trained.status == LuigiStatusCode.SUCCESS, trained.summary_text

    def night(date: datetime.date, policies: str = "", **shift) -> LuigiStatusCode:
        incoming = tmp_path / "data" / "incoming" / date.isoformat()
        if not incoming.is_dir():
            incoming.mkdir(parents=True)
            rows = flights([pd.Timestamp(date)] * NIGHT_ROWS, np.random.default_rng(date.toordinal()), **shift)
            rows.drop(columns="late").to_csv(incoming / "flights.csv", index=False)
        configure(database_url, **sections, MonitorDrift={"policies": policies})
        return build(fresh(Nightly, date=date)).status

    night.engine = database.connect(database_url)
    night.report = lambda date: Path(fresh(Nightly, date=date).report_path()).read_text()
    return night


def _last_error(engine) -> str:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT error FROM runs WHERE task = 'Nightly' AND status = 'failed' ORDER BY started_at DESC")
        ).scalar()


def _alerts(engine, date) -> set[tuple]:
    query = sa.text("SELECT feature, method, acknowledged FROM drift_alerts WHERE batch_date = :d")
    with engine.connect() as connection:
        return {(f, m, bool(a)) for f, m, a in connection.execute(query, {"d": date})}


def test_policies_and_acknowledgements_pass_nights_that_fail_by_design_and_not_a_real_shift(nights):
    engine = nights.engine
    # The first April night: a weekday and a month training never saw in a batch, each constant.
    assert nights(APRIL_6) == LuigiStatusCode.FAILED
    first = _last_error(engine)
    assert "drift on 2026-04-06" in first and " in month, weekday;" in first, first
    suggested = "[MonitorDrift] policies = weekday:per_night, month:per_night would fit"
    assert suggested in first and "constant within each training date of 'flight_date'" in first, first

    # The suggested policy: the weekday was one training held, so it passes; April did not.
    policies = "weekday:per_night, month:per_night"
    assert nights(APRIL_6, policies) == LuigiStatusCode.FAILED
    assert " in month;" in _last_error(engine) and "weekday" not in _last_error(engine)
    assert _alerts(engine, APRIL_6) == {("month", "per_night", False)}

    acked = _overnight("drift", "ack", "month", "--reason", "April comes after the training months")
    assert acked.exit_code == 0 and "acknowledged month by per_night" in acked.output, acked.output
    assert nights(APRIL_6, policies) == LuigiStatusCode.SUCCESS
    assert _alerts(engine, APRIL_6) == {("month", "per_night", True)}  # still stored, acknowledged

    # The next night passes, after a gap; its alert is in SQL and in the report.
    assert nights(JULY[0], policies) == LuigiStatusCode.SUCCESS, _last_error(engine)
    assert _alerts(engine, JULY[0]) == {("month", "per_night", True)}
    assert "1 acknowledged, 0 new" in nights.report(JULY[0])

    # A real shift on another feature still fails its night, and names that feature alone.
    assert nights(JULY[1], policies, carriers=(0.05, 0.05, 0.05, 0.05, 0.8)) == LuigiStatusCode.FAILED
    assert " in carrier (1 acknowledged: month by per_night);" in _last_error(engine), _last_error(engine)
    assert nights(JULY[2], policies, distance_shift=500.0) == LuigiStatusCode.FAILED
    assert " in distance (1 acknowledged: month by per_night);" in _last_error(engine), _last_error(engine)

    listed = _overnight("drift", "acks", "--format", "csv")
    assert listed.exit_code == 0 and ",month,per_night," in listed.output, listed.output
    ended = _overnight("drift", "unack", "month", "--reason", "July is in the next training")
    assert ended.exit_code == 0 and "ended 1 acknowledgement(s) of month" in ended.output, ended.output
    # Nights that passed under it stay acknowledged; the next night fails on month again.
    assert _alerts(engine, JULY[0]) == {("month", "per_night", True)}
    assert nights(JULY[3], policies) == LuigiStatusCode.FAILED
    assert " in month;" in _last_error(engine), _last_error(engine)


def _answer_online(engine, day: datetime.date, model: str, rows: pd.DataFrame) -> None:
    """What `overnight serve` stores for requests that sent these rows on `day` (its journal loader's
    call): the ids are the rows' own, since the requests send the id column."""
    sent = rows.drop(columns="late")
    answers = pd.DataFrame(
        {
            "batch_date": day,
            "example_id": sent["flight_id"],
            "model_version": model,
            "prediction": "on time",  # what this one-epoch model answers, as on the night's files
            "score": 0.9,
            "probabilities": None,
            "requested_at": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=12),
            "inputs": [json.dumps(row) for row in sent.to_dict("records")],
        }
    )
    online_log.load_online(engine, answers)


def _drift_summary(date: datetime.date) -> dict:
    """The summary of the drift check the night of `date` asks for now."""
    drift = fresh(Nightly, date=date).requires()["drift"]
    return DriftFolder(Path(drift.output().path)).summary()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # online_rows on both: tests/db
def test_a_night_s_drift_check_counts_the_online_answers_of_its_day(nights):
    engine, policies = nights.engine, "weekday:off, month:off"
    model = registry.production(engine)["version"]
    rng = np.random.default_rng(7)
    # Online answers like the training data: the night passes, its drift measured over both.
    _answer_online(engine, JULY[0], model, flights([pd.Timestamp(JULY[0])] * 200, rng))
    assert nights(JULY[0], policies) == LuigiStatusCode.SUCCESS, _last_error(engine)
    assert _drift_summary(JULY[0])["rows"] == NIGHT_ROWS + 200
    assert _drift_summary(JULY[0])["online_rows"] == 200

    # The night's files as before; the day's online requests 500 miles longer: the night fails on them.
    _answer_online(engine, JULY[1], model, flights([pd.Timestamp(JULY[1])] * 200, rng, distance_shift=500.0))
    assert nights(JULY[1], policies) == LuigiStatusCode.FAILED
    assert " in distance;" in _last_error(engine), _last_error(engine)

    # More answers after the night ran are another input: the same night runs its check again.
    later = flights([pd.Timestamp(JULY[0])] * 10, rng)
    _answer_online(engine, JULY[0], model, later.assign(flight_id="later-" + later["flight_id"]))
    assert nights(JULY[0], policies) == LuigiStatusCode.SUCCESS
    assert _drift_summary(JULY[0])["online_rows"] == 210
