"""Unit tests for pipeline/stages/dates.py: one reading per column, never a silent guess."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.stages.dates import (
    DATE_PARTS,
    TIME_PARTS,
    AmbiguousDates,
    check_rule,
    date_part_columns,
    date_parts,
    has_time_of_day,
    looks_like_dates,
    parse_dates,
    with_date_parts,
)


def _days(parsed) -> list[str | None]:
    return [None if pd.isna(t) else t.strftime("%Y-%m-%d") for t in parsed.times]


def test_iso_and_day_first_dates_mixed_stop_instead_of_being_guessed():
    values = pd.Series(["2012-01-01", "02/01/2012", "03/01/2012", "2012-01-04"], index=[10, 11, 12, 13])
    with pytest.raises(AmbiguousDates, match=r"'02/01/2012' reads as 2012-01-02 \(day-first\) or 2012-02-01") as error:
        parse_dates(values)
    assert list(error.value.labels) == [11, 12]


def test_one_value_that_only_reads_day_first_decides_the_column():
    parsed = parse_dates(pd.Series(["02/01/2012", "13/01/2012"]))
    assert parsed.rule == "day-first" and _days(parsed) == ["2012-01-02", "2012-01-13"]
    parsed = parse_dates(pd.Series(["02/01/2012", "01/13/2012"]))
    assert parsed.rule == "month-first" and _days(parsed) == ["2012-02-01", "2012-01-13"]


def test_values_no_single_rule_reads_stop_too():
    with pytest.raises(AmbiguousDates, match="'13/01/2012' reads only day-first and '01/13/2012' only month-first"):
        parse_dates(pd.Series(["13/01/2012", "01/13/2012"]))


@pytest.mark.parametrize(
    ("rule", "expected"), [("day-first", "2012-01-02"), ("month-first", "2012-02-01"), ("%d/%m/%Y", "2012-01-02")]
)
def test_a_declared_rule_reads_every_value_and_iso_always_reads_as_iso(rule, expected):
    parsed = parse_dates(pd.Series(["2012-01-05", "02/01/2012"]), rule)
    assert _days(parsed) == ["2012-01-05", expected]


def test_unreadable_values_are_not_a_time_and_missing_ones_stay_missing():
    parsed = parse_dates(pd.Series(["01/01/2012", "31/02/2012", "soon", None, "5 Feb 2012", "13.03.12 10:30"]))
    assert _days(parsed) == ["2012-01-01", None, None, None, "2012-02-05", "2012-03-13"]
    assert parsed.times.iloc[-1].hour == 10


def test_a_bad_rule_names_the_setting():
    assert check_rule(" day-first ") == "day-first" and check_rule("") == ""
    with pytest.raises(ValueError, match=r"\[dataset\] date_format: 'dd/mm'"):
        check_rule("dd/mm")


def test_dates_are_inferred_from_values_and_numbers_are_not_dates():
    assert looks_like_dates(pd.Series(["2012-01-01", "2012-06-30", None]))
    assert looks_like_dates(pd.Series(["02/01/2012", "03/01/2012"]))  # ambiguous, still dates
    assert not looks_like_dates(pd.Series(["1.5", "2012"])) and not looks_like_dates(pd.Series(["red", "blue"]))


def test_date_parts_put_december_next_to_january():
    times = pd.Series(pd.to_datetime(["2012-01-01", "2012-12-31", "2012-07-01", None], utc=True))
    parts = date_parts(times, "day")
    assert parts["day:year"].tolist()[:3] == [2012.0, 2012.0, 2012.0] and np.isnan(parts["day:year"].iloc[3])
    circle = parts[["day:yearday_sin", "day:yearday_cos"]].to_numpy()
    # 31 December is a day from 1 January on the circle; 1 July is across it.
    assert np.linalg.norm(circle[1] - circle[0]) < 0.02 and np.linalg.norm(circle[2] - circle[0]) > 1.99
    assert parts["day:month_cos"].iloc[2] == pytest.approx(-1.0, abs=1e-9)
    assert parts.iloc[3].isna().all()


def test_the_time_of_day_is_a_point_on_a_24_hour_circle():
    times = pd.Series(pd.to_datetime(["2012-01-01 00:00", "2012-01-01 23:59", "2012-01-01 12:00", None], utc=True))
    circle = date_parts(times, "posted")[["posted:timeofday_sin", "posted:timeofday_cos"]].to_numpy()
    assert circle[0].tolist() == [0.0, 1.0]
    # 23:59 is a minute from midnight on the circle; noon is across it.
    assert np.linalg.norm(circle[1] - circle[0]) < 0.005 and np.linalg.norm(circle[2] - circle[0]) > 1.99
    assert np.isnan(circle[3]).all()
    quarter = date_parts(pd.Series(pd.to_datetime(["2012-01-01 06:00:30"], utc=True)), "t")
    assert quarter["t:timeofday_sin"].iloc[0] == pytest.approx(np.sin(2 * np.pi * 360.5 / 1440))  # seconds count


def test_only_times_that_vary_within_a_day_have_a_time_of_day():
    assert has_time_of_day(pd.Series(["2012-01-01 08:15", "2012-01-02 17:40", None]))
    assert not has_time_of_day(pd.Series(["2012-01-01", "2012-06-30", None]))  # dates: midnight
    assert not has_time_of_day(pd.Series(["2012-01-01 12:00", "2012-06-30 12:00"]))  # one time of day
    assert not has_time_of_day(pd.Series([None, None], dtype=object))
    # One stray time among 200 dates is no time of day: its part would be one outlier.
    stray = pd.Series(pd.date_range("2012-01-01", periods=200, freq="D", tz="UTC")).astype(object)
    stray.iloc[7] = pd.Timestamp("2012-01-08 09:30", tz="UTC")
    assert not has_time_of_day(stray)


def test_the_fit_decides_the_part_columns_and_with_date_parts_makes_every_part():
    train = pd.DataFrame({"posted": ["2012-01-01 08:15", "2012-01-02 17:40"], "born": ["1990-01-01", "1991-05-05"]})
    assert date_part_columns(["posted", "born"], train) == [
        *(f"posted:{part}" for part in DATE_PARTS + TIME_PARTS),
        *(f"born:{part}" for part in DATE_PARTS),
    ]
    # Without training rows (the layout before the time of day): the date parts only.
    assert date_part_columns(["posted"]) == [f"posted:{part}" for part in DATE_PARTS]
    parted = with_date_parts(train, ["posted", "born"])
    assert {"posted:timeofday_sin", "born:timeofday_cos"} <= set(parted.columns)  # callers take what is listed
    assert list(train.columns) == ["posted", "born"]  # the argument is not mutated


def test_a_year_first_date_is_not_read_as_a_day_first_one_inside_it():
    parsed = parse_dates(pd.Series(["2012/01/25", "13/01/2012"]))
    assert _days(parsed) == ["2012-01-25", "2012-01-13"]


def test_typed_and_empty_columns_read_without_text():
    typed = pd.Series(pd.to_datetime(["2012-01-02", None]))
    assert _days(parse_dates(typed)) == ["2012-01-02", None]
    assert _days(parse_dates(pd.Series([np.nan, np.nan]))) == [None, None]


def test_undecided_values_read_one_way_each_and_two_ways_stop():
    parsed = parse_dates(pd.Series(["13/01/2012", "01/01/2012", "01/13/2012"]), decide=False)
    assert parsed.rule == "" and _days(parsed) == ["2012-01-13", "2012-01-01", "2012-01-13"]
    with pytest.raises(AmbiguousDates, match="training decided no order") as error:
        parse_dates(pd.Series(["13/01/2012", "02/01/2012"], index=[4, 5]), decide=False)
    assert list(error.value.labels) == [5]
