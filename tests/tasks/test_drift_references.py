"""`[MonitorDrift] reference` on a seasonal series: December nights against training Decembers
(calendar) and against recent quiet nights (rolling) stay quiet; a real December shift alerts."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

from pipeline.artifacts.monitoring import DriftFolder
from tasks import MonitorDrift, Nightly, RegisterModel
from tests.tasks.support import build, fresh

ROWS_PER_DAY = 12
NIGHT_ROWS = 300
DECEMBER = [datetime.date(2025, 12, day) for day in range(1, 10)]


def temperature(days: pd.DatetimeIndex | pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Cold in January, warm in July: 12 - 10 cos(day of year), and 2 degrees of weather."""
    day_of_year = pd.DatetimeIndex(days).day_of_year.to_numpy()
    return 12 - 10 * np.cos(2 * np.pi * (day_of_year - 15) / 365.25) + rng.normal(0, 2, len(day_of_year))


def weather(days, rng: np.random.Generator, *, humidity_shift: float = 0.0) -> pd.DataFrame:
    table = pd.DataFrame({"day": pd.DatetimeIndex(days).strftime("%Y-%m-%d")})
    table["temperature"] = temperature(days, rng).round(2)
    table["humidity"] = (rng.normal(60, 10, len(table)) + humidity_shift).round(1)
    return table


@pytest.fixture
def seasonal(configure, tmp_path):
    """Two years of daily weather (2023 and 2024), a frost model trained on it with the day as time column."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2023-01-01", "2024-12-31", freq="D").repeat(ROWS_PER_DAY)
    table = weather(days, rng)
    table["frost"] = np.where(table["temperature"] + rng.normal(0, 1, len(table)) < 3, "yes", "no")
    raw = tmp_path / "raw" / "weather.csv"
    raw.parent.mkdir(parents=True)
    table.to_csv(raw, index=False)
    sections = {
        "dataset": {"path": str(raw), "label": "frost", "time_column": "day", "kinds": "day:datetime"},
        "TrainModel": {"architecture": "mlp", "epochs": "1", "batch_size": "64"},
    }
    configure(**sections)
    result = build(RegisterModel())
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text

    def night(date: datetime.date, reference: str, humidity_shift: float = 0.0) -> dict:
        incoming = tmp_path / "data" / "incoming" / date.isoformat()
        incoming.mkdir(parents=True, exist_ok=True)
        rows = weather(
            [pd.Timestamp(date)] * NIGHT_ROWS, np.random.default_rng(date.day), humidity_shift=humidity_shift
        )
        rows.to_csv(incoming / "night.csv", index=False)
        configure(**sections, MonitorDrift={"reference": reference, "rolling_nights": "7"})
        task = fresh(MonitorDrift, date=date)
        outcome = build(task)
        assert outcome.status == LuigiStatusCode.SUCCESS, outcome.summary_text
        folder = DriftFolder(Path(task.output().path))
        drift = folder.drift()
        return {**folder.summary(), "alerted": set(drift.loc[drift["alert"], "feature"])}

    return night


def test_december_nights_alert_against_the_year_and_stay_quiet_against_their_season(seasonal, tmp_path):
    # The whole year as reference: a December night is colder than the year, every night.
    whole_year = seasonal(DECEMBER[0], "training")
    assert "temperature" in whole_year["alerted"], whole_year
    assert whole_year["reference"] == "the training split"

    for date in DECEMBER[:7]:
        night = seasonal(date, "calendar")
        assert night["alerts"] == 0, (date, night["alert"])
        assert night["reference"].startswith("calendar: "), night["reference"]
        assert "test predictions of the window" in night["reference"]

    rolling = seasonal(DECEMBER[7], "rolling")
    assert rolling["alerts"] == 0, rolling["alert"]
    assert rolling["reference"] == "rolling: 7 of 7 quiet nights, 2025-12-01 to 2025-12-07 (2100 rows)"

    # A real shift in December (humidity up by 0.8 sd) alerts on that column alone, either way.
    for reference in ("rolling", "calendar"):
        shifted = seasonal(DECEMBER[8], reference, humidity_shift=8.0)
        assert shifted["alerted"] == {"humidity"}, (reference, shifted["alert"])

    # The alerting night does not join the rolling window, and the report names the reference.
    later = seasonal(datetime.date(2025, 12, 10), "rolling")
    assert later["reference"] == "rolling: 7 of 7 quiet nights, 2025-12-02 to 2025-12-08 (2100 rows)"
    report = fresh(Nightly, date=datetime.date(2025, 12, 10))
    build(report)
    html = report.report_path().read_text()
    assert "Drift measured against rolling: 7 of 7 quiet nights" in html
    assert "The drift score in the title is against rolling: 7 of 7" in html
