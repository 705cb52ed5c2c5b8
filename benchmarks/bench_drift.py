"""Drift and data-quality checks of one night: seconds for nights of 100,000 and 1,000,000 rows
by 20 columns (15 numeric, 5 categorical) against a 50,000-row training reference, and where the
time goes (each method timed alone over the same columns).

Runs in-process: `compare` is NumPy, SciPy and pandas, no TensorFlow and no database.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks.common import Result

NUMERIC, CATEGORICAL = 15, 5
REFERENCE_ROWS = 50_000


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = {f"x{i}": rng.normal(i, 1 + i / 10, rows) for i in range(NUMERIC)}
    frame.update({f"c{i}": rng.choice(["a", "b", "c", "d", "e"], rows) for i in range(CATEGORICAL)})
    return pd.DataFrame(frame)


def _schema():
    from pipeline.stages.schema import Schema

    kinds = {f"x{i}": "numeric" for i in range(NUMERIC)} | {f"c{i}": "categorical" for i in range(CATEGORICAL)}
    return Schema(label="y", task="regression", kinds=kinds)


def _parts(night: pd.DataFrame, reference: dict) -> dict[str, float]:
    """Seconds of each method alone over the night's numeric columns."""
    from pipeline.stages import drift_statistics as statistics
    from pipeline.stages.profiles import bin_counts

    timed = {}
    numeric = [f"x{i}" for i in range(NUMERIC)]
    methods = {
        "psi bins": lambda values, profile: bin_counts(values, np.asarray(profile["edges"][1:-1], dtype="float64")),
        "ks": lambda values, profile: statistics.ks(values, np.asarray(profile["sample"])),
        "wasserstein": lambda values, profile: statistics.wasserstein(values, np.asarray(profile["sample"]), 1.0),
        "range and missing": lambda values, profile: np.mean((values < profile["min"]) | (values > profile["max"])),
    }
    for name, method in methods.items():
        start = time.perf_counter()
        for column in numeric:
            method(night[column].to_numpy(dtype="float64"), reference["features"][column])
        timed[name] = time.perf_counter() - start
    return timed


def measure(rows: int) -> dict:
    from pipeline.stages.monitoring import DriftThresholds, compare
    from pipeline.stages.profiles import reference_profile

    schema = _schema()
    reference = reference_profile(_table(REFERENCE_ROWS, 0).assign(y=0.0), schema)
    night = _table(rows, 1)
    start = time.perf_counter()
    _, drift = compare(night, schema, reference, DriftThresholds())
    return {"seconds": time.perf_counter() - start, "alerts": int(drift["alert"].sum()), **_parts(night, reference)}


def results(sizes: tuple[int, ...]) -> list[Result]:
    found = []
    for rows in sizes:
        measured = measure(rows)
        parts = ", ".join(
            f"{name} {measured[name]:.2f} s" for name in ("psi bins", "ks", "wasserstein", "range and missing")
        )
        found.append(
            Result(
                f"drift and quality checks, {rows:,} rows x {NUMERIC + CATEGORICAL} columns",
                measured["seconds"],
                None,
                "s",
                ">= 0",
                f"no target, reported; {measured['alerts']} alerts on an unshifted night; "
                f"over the {NUMERIC} numeric columns alone: {parts}",
            )
        )
    return found
