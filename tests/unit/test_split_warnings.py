"""Unit tests for pipeline/stages/split_warnings.py: a leak-free split that still cannot be trusted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.common.columns import DUPLICATE_KEY, EXAMPLE_ID
from pipeline.stages.split import SplitConfig, split


def _weather(rows: int) -> pd.DataFrame:
    """Daily weather in time order: snow only in the first winter, rain mostly early too."""
    days = pd.date_range("2012-01-01", periods=rows, freq="D", tz="UTC")
    weather = np.where(np.arange(rows) < rows * 0.15, "snow", np.where(np.arange(rows) < rows * 0.6, "rain", "sun"))
    return pd.DataFrame(
        {
            EXAMPLE_ID: [f"d{i}" for i in range(rows)],
            DUPLICATE_KEY: [f"k{i}" for i in range(rows)],
            "when": days,
            "weather": weather,
        }
    )


def test_a_time_split_that_leaves_a_class_out_and_shifts_the_mix_warns():
    table = _weather(400)
    _, checks = split(table, label="weather", task="classification", config=SplitConfig(), time_column="when")
    warnings = checks["warnings"]
    missing = "no rows of classes 'rain' (180 train rows), 'snow' (60 train rows)"
    assert f"test has {missing}: test scores say nothing about them" in warnings
    assert any(w.startswith(f"validation has {missing}") for w in warnings)
    shift = [w for w in warnings if w.startswith("the label mix shifts between train and test")]
    assert shift and "Jensen-Shannon distance" in shift[0] and "'sun'" in shift[0]


def test_a_random_stratified_split_of_real_labels_has_no_warning():
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame.rename(columns={"target": "label"})
    wine[EXAMPLE_ID] = [f"w{i}" for i in range(len(wine))]
    wine[DUPLICATE_KEY] = wine[EXAMPLE_ID]
    for seed in range(5):
        _, checks = split(wine, label="label", task="classification", config=SplitConfig(seed=seed))
        assert checks["warnings"] == []


def test_a_regression_label_that_drifts_over_time_warns():
    table = _weather(300).drop(columns="weather")
    table["price"] = np.arange(300, dtype=float)  # every later day dearer: test is out of range
    _, checks = split(table, label="price", task="regression", config=SplitConfig(), time_column="when")
    assert any(w.startswith("the label mix shifts between train and test") for w in checks["warnings"])
