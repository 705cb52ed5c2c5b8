"""A night's monitoring as history grows: a year of nights, each scored, labeled a day later and
read back as the Nightly step reads it, on SQLite and PostgreSQL.

Every night goes through the project's own loaders, the bulk paths (`load_batch`: COPY or
executemany; `load_feedback` with tie order and kappa, as IngestFeedback calls it), and
`record_drift` (a few features, one alert). A night's monitoring time is what Nightly spends on
the database after scoring: that night's label load (the previous night's labels) + the night
report's read of 14 nights (`night_history`) + the alerts query. It is measured every night; the
figure is the median of three nights: the first with a full 14-night report (nights 15 to 17),
the middle ones and the last ones; the ratio is against the first point's median, same run
(target: flat, <= 1.5). At the
end the label and quality queries of the SQL cookbook (docs/database.md) (2, 9, 10, 12) run as printed,
each against 1 s.

python -m benchmarks.bench_history 365 10000     # the year of the issue
python -m benchmarks.bench_history 30 500 --skip-postgres
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import statistics

import numpy as np
import pandas as pd
import sqlalchemy as sa

from benchmarks.common import PostgresSchema, Result, register_model, scratch_folder, stopwatch, table
from pipeline.stages.agreement import pair_agreement
from pipeline.store import database, labels, prediction_log
from pipeline.store.night_history import night_history

POSTGRES_URL = os.environ.get("OVERNIGHT_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
FIRST_NIGHT = datetime.date(2025, 1, 1)
MODEL = "m1"
CLASSES = ("cat", "dog", "bird")
LABELED = 0.5  # share of a night's predictions labeled the next day
SECOND_OPINION = 0.1  # share of those labeled by a second annotator too
REPORT_NIGHTS = 14  # what the night report shows
PROBE = 3  # nights per measured point: the median of three
# The SQL cookbook's (docs/database.md) queries over labels and quality, as printed there.
COOKBOOK = {
    "2. quality per night": "SELECT batch_date, model_version, predicted, labeled, accuracy, mae "
    "FROM prediction_quality_daily ORDER BY batch_date, model_version",
    "9. conflicts per night": "SELECT batch_date, predicted_class, relabeled, conflicting, "
    "round(CAST(conflict_share AS NUMERIC), 3) AS conflict_share "
    "FROM label_conflicts_daily ORDER BY batch_date DESC, conflict_share DESC",
    "10. annotator agreement": "SELECT annotator, labels, compared, agreed, round(CAST(agreement AS NUMERIC), 3) "
    "AS agreement FROM annotator_agreement ORDER BY agreement, annotator",
    "12. examples to adjudicate": "SELECT r.example_id, r.status, r.label AS resolved, f.annotator, f.label, "
    "f.source FROM resolved_labels r JOIN feedback f ON f.example_id = r.example_id "
    "WHERE r.distinct_labels > 1 ORDER BY r.example_id, f.annotator",
}


def results(nights: int, rows: int, *, postgres: bool = True) -> list[Result]:
    if nights < REPORT_NIGHTS + 3 * PROBE:
        raise ValueError(f"at least {REPORT_NIGHTS + 3 * PROBE} nights, not {nights}: a full report, then three points")
    found = _backend_results("SQLite", f"sqlite:///{scratch_folder('bench-history-') / 'overnight.db'}", nights, rows)
    if postgres:
        with PostgresSchema(POSTGRES_URL) as url:
            found += _backend_results("PostgreSQL", url, nights, rows)
    return found


def _backend_results(backend: str, url: str, nights: int, rows: int) -> list[Result]:
    engine = database.connect(url)
    register_model(engine, MODEL)
    rng = np.random.default_rng(0)
    labeling, reading = [], []  # seconds, night by night: the label load; the report and alerts
    previous = None
    for index in range(nights):
        night = FIRST_NIGHT + datetime.timedelta(days=index)
        scored = _score(engine, rng, night, index, rows)
        with stopwatch() as loading:
            if previous is not None:
                _label(engine, rng, previous)
        with stopwatch() as read:
            night_history(engine, batch_date=night, model_version=MODEL, nights=REPORT_NIGHTS)
            prediction_log.alerts(engine, night, MODEL)
        labeling.append(loading["seconds"])
        reading.append(read["seconds"])
        previous = scored
        _analyze(engine)
    size = f"{nights} nights x {rows:,} rows"
    monitoring = [load + read for load, read in zip(labeling, reading)]
    found = [
        _flat(f"night monitoring {backend}, middle nights, {size}", monitoring, "middle", nights),
        _flat(f"night monitoring {backend}, last nights, {size}", monitoring, "last", nights),
        _flat(f"label load with kappa {backend}, last nights, {size}", labeling, "last", nights),
        _flat(f"night report and alerts {backend}, last nights, {size}", reading, "last", nights),
    ]
    with engine.connect() as connection:
        for name, query in COOKBOOK.items():
            with stopwatch() as answered:
                connection.exec_driver_sql(query).all()
            found.append(Result(f"cookbook {name}, {backend}, {size}", answered["seconds"], None, "s", "<= 1.0"))
    return found


def _analyze(engine: sa.Engine) -> None:
    """On PostgreSQL, what autovacuum does between two real nights, untimed: new statistics.

    A year here passes in minutes, before autovacuum's next round (a minute apart, by default):
    without them the planner keeps the row counts of the empty tables and scans `feedback` and
    `label_resolutions` whole for the 500 ids of one page."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


def _flat(name: str, seconds: list[float], point: str, nights: int) -> Result:
    """The median of PROBE nights at `point` against the first nights whose report shows all its
    14 nights (before them a report reads fewer nights: less work, not a flatter curve)."""
    middle = (REPORT_NIGHTS + nights - PROBE) // 2
    start = {"middle": middle, "last": nights - PROBE}[point]
    first = statistics.median(seconds[REPORT_NIGHTS : REPORT_NIGHTS + PROBE])
    note = f"median of {PROBE} nights; baseline: nights {REPORT_NIGHTS + 1} to {REPORT_NIGHTS + PROBE}, same run"
    return Result(name, statistics.median(seconds[start : start + PROBE]), first, "s", "<= 1.5", note)


def _score(engine, rng, night: datetime.date, index: int, rows: int) -> pd.DataFrame:
    predicted = rng.choice(CLASSES, rows)
    frame = pd.DataFrame(
        {
            "example_id": [f"{index:04d}-{k:06d}" for k in range(rows)],
            "prediction": predicted,
            "score": rng.random(rows),
        }
    )
    prediction_log.load_batch(
        engine, batch_date=night, model_version=MODEL, predictions=frame, rows_in=rows, rows_rejected=0
    )
    features = [f"f{k}" for k in range(8)]
    drift = pd.DataFrame(
        {"feature": features, "method": "psi", "score": rng.random(8) * 0.3, "threshold": 0.2, "alert": False}
    )
    drift.loc[0, "alert"] = True
    stats = pd.DataFrame({"feature": features, "statistic": "mean", "batch_value": 0.0, "reference_value": 0.0})
    prediction_log.record_drift(engine, batch_date=night, model_version=MODEL, stats=stats, drift=drift)
    return frame


def _label(engine, rng, scored: pd.DataFrame) -> None:
    """The night before's labels, as IngestFeedback loads them: right 80% of the time."""
    chosen = scored[rng.random(len(scored)) < LABELED]
    truth = np.where(rng.random(len(chosen)) < 0.8, chosen["prediction"], rng.choice(CLASSES, len(chosen)))
    first = pd.DataFrame({"example_id": chosen["example_id"], "annotator": "ann", "label": truth})
    again = first[rng.random(len(first)) < SECOND_OPINION]
    second = again.assign(
        annotator="bob", label=np.where(rng.random(len(again)) < 0.9, again["label"], rng.choice(CLASSES, len(again)))
    )
    frame = pd.concat([first, second], ignore_index=True)
    labels.load_feedback(engine, frame, source="bench", tie_order=("ann",), pair_agreement=pair_agreement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("nights", type=int)
    parser.add_argument("rows", type=int)
    parser.add_argument("--skip-postgres", action="store_true")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(table(results(arguments.nights, arguments.rows, postgres=not arguments.skip_postgres)))


if __name__ == "__main__":
    main()
