"""Per-feature drift policies (pipeline/stages/policies.py) and what training did within a date
(pipeline/stages/within_dates.py), on a daily table: weekday and month one value per date."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.stages.monitoring import DriftThresholds, compare
from pipeline.stages.policies import PolicyError, apply_policies, parse_policies, suggestion_line, suggestions
from pipeline.stages.profiles import reference_profile
from pipeline.stages.schema import Schema
from pipeline.stages.within_dates import MAX_VALUES, WITHIN_DATES, within_dates_profile

FEATURES = ["carrier", "distance", "weekday", "month"]
SCHEMA = Schema(
    label="late",
    task="classification",
    kinds={"carrier": "categorical", "distance": "numeric", "weekday": "numeric", "month": "numeric"},
    time_column="day",
)


def _days(start: str, end: str, per_day: int, seed: int = 0) -> pd.DataFrame:
    days = pd.date_range(start, end, freq="D").repeat(per_day)
    rng = pd.Series(range(len(days))).sample(frac=1, random_state=seed).to_numpy()
    return pd.DataFrame(
        {
            "day": days,
            "carrier": [("AA", "DL", "UA")[i % 3] for i in rng],
            "distance": (500 + (rng % 97) * 10).astype("float64"),
            "weekday": days.weekday.astype("float64"),
            "month": days.month.astype("float64"),
        }
    )


@pytest.fixture(scope="module")
def training() -> dict:
    table = _days("2026-01-01", "2026-03-31", 20)
    reference = reference_profile(table, SCHEMA)
    reference[WITHIN_DATES] = within_dates_profile(table, SCHEMA)
    return reference


def _night(date: str, rows: int = 300) -> pd.DataFrame:
    return _days(date, date, rows, seed=1)


def _checked(night: pd.DataFrame, training: dict, policies: dict[str, str]):
    thresholds = DriftThresholds()
    stats, drift = compare(night, SCHEMA, training, thresholds)
    return apply_policies(stats, drift, policies, batch=night, schema=SCHEMA, training=training, thresholds=thresholds)


def _alerting(drift: pd.DataFrame) -> set[tuple[str, str]]:
    return set(map(tuple, drift.loc[drift["alert"], ["feature", "method"]].to_numpy()))


def test_training_records_few_values_and_features_constant_within_a_date(training):
    within = training[WITHIN_DATES]
    assert within["time_column"] == "day"
    weekday = {"values": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "constant_within_dates": True}
    assert within["features"]["weekday"] == weekday
    assert within["features"]["month"]["values"] == [1.0, 2.0, 3.0]
    assert within["features"]["carrier"] == {"values": ["AA", "DL", "UA"], "constant_within_dates": False}
    many = pd.DataFrame({"day": pd.Timestamp("2026-01-01"), "x": range(MAX_VALUES + 1)}, dtype=object)
    many["x"] = many["x"].astype("float64")
    schema = Schema(label="y", task="regression", kinds={"x": "numeric"}, time_column="day")
    assert within_dates_profile(many, schema)["features"]["x"] == {"values": None, "constant_within_dates": False}
    no_time = Schema(label="y", task="regression", kinds={"x": "numeric"})
    assert within_dates_profile(many, no_time)["features"]["x"]["constant_within_dates"] is None


def test_a_daily_night_alerts_on_weekday_and_month_and_suggests_per_night(training):
    stats, drift = _checked(_night("2026-04-06"), training, {})
    alerting = _alerting(drift)
    assert {"weekday", "month"} == {feature for feature, _ in alerting}
    assert ("weekday", "constant") in alerting and ("month", "out_of_range") in alerting
    suggested = suggestions(drift, training, {})
    assert suggested == {"weekday": "per_night", "month": "per_night"}
    assert suggestion_line(suggested, "day") == (
        "weekday, month are constant within each training date of 'day': "
        "[MonitorDrift] policies = weekday:per_night, month:per_night would fit"
    )
    assert suggestions(drift, training, {"weekday": "per_night", "month": "range"}) == {}


def test_per_night_checks_the_value_range_the_validity_and_off_nothing(training):
    policies = {"weekday": "per_night", "month": "per_night"}
    stats, drift = _checked(_night("2026-03-02"), training, policies)  # a Monday in March: values training held
    assert _alerting(drift) == set()
    per_night = drift[drift["method"] == "per_night"].set_index("feature")
    assert per_night.loc["weekday", "score"] == 0 and per_night.loc["month", "score"] == 0
    assert set(drift.loc[drift["feature"] == "weekday", "method"]) == {"missing", "per_night"}
    shares = stats[stats["statistic"] == "night_values"].set_index("feature")
    assert shares.loc["weekday", "batch_value"] == 1 and shares.loc["weekday", "reference_value"] == 7

    # April: a month training never held still alerts, by its own rule only.
    _, april = _checked(_night("2026-04-06"), training, policies)
    assert _alerting(april) == {("month", "per_night")}
    _, ranged = _checked(_night("2026-04-06"), training, {"weekday": "off", "month": "range"})
    assert set(ranged.loc[ranged["feature"] == "month", "method"]) == {"missing", "out_of_range"}
    assert _alerting(ranged) == {("month", "out_of_range")}
    assert "weekday" not in set(ranged["feature"])


def test_per_night_falls_back_to_the_training_range_without_recorded_values(training):
    older = {key: value for key, value in training.items() if key != WITHIN_DATES}  # a model from before policies
    _, drift = _checked(_night("2026-04-06"), older, {"month": "per_night", "weekday": "per_night"})
    assert _alerting(drift) == {("month", "per_night")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("weekday", "'weekday' is not FEATURE:POLICY"),
        ("weekday:nightly", "the policy is one of all, per_night, range, off"),
        ("weekday:per_night, month:range, weekday:off", "'weekday' has two policies"),
        ("photo:brightness:per_night", "per_night checks a numeric or categorical column's values"),
        ("wekday:per_night", "the model monitors no feature 'wekday' .it monitors carrier, distance, weekday, month."),
    ],
)
def test_a_policy_that_cannot_apply_is_one_line(text, message):
    with pytest.raises(PolicyError, match=message):
        parse_policies(text, [*FEATURES, "photo:brightness"], FEATURES)


def test_policies_parse_from_one_line():
    assert parse_policies(" weekday:per_night, month : range,carrier:all ,", FEATURES, FEATURES) == {
        "weekday": "per_night",
        "month": "range",
    }
    assert parse_policies("", FEATURES, FEATURES) == {}
    assert parse_policies("photo:brightness:range", ["photo:brightness"]) == {"photo:brightness": "range"}
