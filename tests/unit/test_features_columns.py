"""Unit tests for pipeline/stages/features.py read as a person would (issue 30): a timestamp keeps its
time of day when it has one, a category seen once has no id of its own, and a preprocessor fitted
before either rule scores exactly as it did."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.stages.dates import DATE_PARTS, TIME_PARTS
from pipeline.stages.features import MIN_CATEGORY_COUNT, fit, transform
from pipeline.stages.preprocessor import MISSING_ID, OUT_OF_VOCABULARY_ID, Preprocessor
from pipeline.stages.schema import Schema

FIXTURES = Path(__file__).parent / "fixtures"
DATED = Schema(label="y", task="classification", kinds={"posted": "datetime", "x": "numeric"})


def _posts(times: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "posted": pd.to_datetime(times, utc=True),
            "x": np.arange(len(times), dtype="float64"),
            "y": ["a", "b"] * (len(times) // 2) + ["a"] * (len(times) % 2),
        }
    )


TIMED = ["2024-01-01 08:15", "2024-03-05 13:40", "2024-07-20 21:05", "2024-12-31 23:59", None]
DATE_ONLY = ["2024-01-01", "2024-03-05", "2024-07-20", "2024-12-31", None]


def test_a_timestamp_whose_times_vary_within_a_day_gains_its_time_of_day():
    fitted = fit(_posts(TIMED), DATED)
    assert fitted.numeric.columns == ("x", *(f"posted:{part}" for part in DATE_PARTS + TIME_PARTS))
    numeric = transform(_posts(TIMED), fitted)["numeric"]
    assert numeric.shape == (5, 2 * 10)  # (rows, 2 * (x + 7 date parts + 2 time parts))
    assert numeric[4, 10:].tolist() == [0.0] + [1.0] * 9  # a missing time: every part flagged


@pytest.mark.parametrize("times", [DATE_ONLY, [t and t.split()[0] + " 12:00" for t in TIMED]])
def test_a_date_only_column_gains_no_constant_parts(times):
    fitted = fit(_posts(times), DATED)
    assert fitted.numeric.columns == ("x", *(f"posted:{part}" for part in DATE_PARTS))


def test_the_night_does_not_decide_the_time_of_day_the_fit_recorded():
    date_only = fit(_posts(DATE_ONLY), DATED)
    assert transform(_posts(TIMED), date_only)["numeric"].shape == (5, 2 * 8)  # timed night, no time parts
    timed = fit(_posts(TIMED), DATED)
    night = transform(_posts(DATE_ONLY), timed)["numeric"]  # a night at midnight still gets the time parts
    assert night.shape == (5, 2 * 10)
    assert np.allclose(night[:4, 8:10], night[0, 8:10])  # every midnight the same point of the day


def test_a_preprocessor_fitted_before_the_time_of_day_scores_as_it_did():
    # preprocessor-0.2-dates.json was written by the release before the time of day was a part,
    # fitted on timed rows; the expected arrays are what that release's transform gave.
    document = json.loads((FIXTURES / "preprocessor-0.2-dates.json").read_text())
    old = Preprocessor.from_json(document)
    assert all(not column.startswith("posted:timeofday") for column in old.numeric.columns)
    night = pd.DataFrame({"posted": pd.to_datetime(["2025-02-14 06:30", None], utc=True)})
    numeric = transform(night, old)["numeric"]
    expected = [
        [1.0, 0.967391, 0.629425, -0.964079, -3.546798, 1.407096, 0.386848, *[0.0] * 7],
        [0.0, -0.16593, 0.37693, 0.298471, 0.232807, -0.287952, 0.386028, *[1.0] * 7],
    ]
    assert numeric.shape == (2, 2 * 7)
    np.testing.assert_allclose(numeric, expected, atol=1e-5)
    assert old.to_json() == document


def test_a_category_seen_fewer_than_the_minimum_count_has_no_id_of_its_own():
    assert MIN_CATEGORY_COUNT == 2
    schema = Schema(label="y", task="classification", kinds={"title": "categorical"})
    train = pd.DataFrame(
        {"title": ["nurse", "nurse", "cook", "cook", "cook", "pilot", None], "y": ["a", "b", "a", "b", "a", "b", "a"]}
    )
    fitted = fit(train, schema)
    assert fitted.categorical["title"] == ("cook", "nurse")  # pilot, seen once, shares the unseen id
    encoded = transform(pd.DataFrame({"title": ["pilot", "astronaut", "nurse", None]}), fitted)
    assert encoded["categorical__title"][:, 0].tolist() == [OUT_OF_VOCABULARY_ID, OUT_OF_VOCABULARY_ID, 3, MISSING_ID]
    assert fitted.model_spec().inputs[0].vocabulary_size == 2 + 2


def test_a_vocabulary_fitted_before_the_minimum_count_keeps_its_rare_categories():
    document = json.loads((FIXTURES / "preprocessor-0.1-classification.json").read_text())
    old = Preprocessor.from_json(document)
    assert old.categorical["island"] == ("Biscoe", "Dream")
    table = pd.DataFrame({"mass": [1.0, 2.0], "island": ["Dream", "Atlantis"], "note": ["big", "bird"]})
    assert transform(table, old)["categorical__island"][:, 0].tolist() == [3, OUT_OF_VOCABULARY_ID]
