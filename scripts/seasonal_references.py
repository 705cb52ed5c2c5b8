"""False drift alerts of the three `[MonitorDrift] reference`s on real seasonal data (docs/monitoring.md, "Drift
references"): Seattle's daily weather (the seattle-weather.csv vega_datasets ships; no dependency
of overnight), trained on 2012-2014; each 2015 month is a night, then December nights with a real
shift (wind x 1.5).

    pip install vega_datasets
    .venv/bin/python scripts/seasonal_references.py PATH/TO/seattle-weather.csv
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stages.monitoring import DriftThresholds, compare
from pipeline.stages.profiles import reference_profile
from pipeline.stages.references import QuietNight, calendar_reference, rolling_reference
from pipeline.stages.schema import Schema
from pipeline.stages.seasons import CALENDAR, calendar_sample

logger = logging.getLogger("seasonal_references")
FEATURES = ("precipitation", "temp_max", "temp_min", "wind")
SCHEMA = Schema(label="weather", task="classification", kinds=dict.fromkeys(FEATURES, "numeric"), time_column="date")


def months(nights: pd.DataFrame):
    for month in range(1, 13):
        yield datetime.date(2015, month, 15), nights[nights["date"].dt.month == month]


def references(training: dict, date: datetime.date, quiet: list[QuietNight]) -> dict:
    """reference name -> (profile, description) for one night."""
    plain = {key: value for key, value in training.items() if key != CALENDAR}
    chosen = {"training": (plain, "the training split")}
    for days in (15, 30):
        found = calendar_reference(
            training, date, schema=SCHEMA, window_days=days, min_rows=30, test_calendar=None, numeric=False
        )
        chosen[f"calendar {days} days"] = (found.features, found.description)
    rolling = rolling_reference(plain, quiet[-3:], wanted=3, schema=SCHEMA, numeric=False, min_rows=30)
    chosen["rolling 3 nights"] = (rolling.features, rolling.description)
    return chosen


def alerted(night: pd.DataFrame, profile: dict) -> list[str]:
    _, drift = compare(night, SCHEMA, profile, DriftThresholds())
    return sorted({row.feature for row in drift[drift["alert"]].itertuples()})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weather", type=Path, help="seattle-weather.csv")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = pd.read_csv(arguments.weather)
    data["date"] = pd.to_datetime(data["date"], format="%Y/%m/%d")
    train, nights = data[data["date"].dt.year <= 2014], data[data["date"].dt.year == 2015]
    training = reference_profile(train, SCHEMA, background=None)
    training[CALENDAR] = calendar_sample(train, SCHEMA, background=None)
    training = json.loads(json.dumps(training))  # as reference.json is read back
    counts, quiet = {}, []
    for date, night in months(nights):
        found = {name: alerted(night, profile) for name, (profile, _) in references(training, date, quiet).items()}
        logger.info("%s (%d rows): %s", date.strftime("%B"), len(night), json.dumps(found))
        for name, features in found.items():
            counts[name] = counts.get(name, 0) + bool(features)
        # The window warms up under the calendar reference, as docs/monitoring.md says, then rolls.
        if not found["rolling 3 nights" if quiet else "calendar 15 days"]:
            quiet.append(QuietNight(date, night, night["weather"].astype(str)))
    logger.info("months of 2015 with an alert: %s", json.dumps(counts))
    december = nights[nights["date"].dt.month == 12].assign(wind=lambda rows: rows["wind"] * 1.5)
    for name, (profile, description) in references(training, datetime.date(2015, 12, 15), []).items():
        logger.info("December, wind x 1.5, %s (%s): alerts in %s", name, description, alerted(december, profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
