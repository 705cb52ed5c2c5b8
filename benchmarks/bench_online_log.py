"""The server's loader as a day fills up: each load costs its rows, not the day's.

`overnight serve` stores its answers about once a second (pipeline/store/online_log.py). A day of
online answers is loaded here in loads of `load_rows`, through the project's own `load_online`,
until it holds `day_rows`; a tenth of each load answers again for an example loaded before (a
replacement) and a few examples carry labels. The figure is the median time of the last loads
against the first ones, same run (target: flat, <= 1.5); on PostgreSQL with new statistics as
autovacuum's analyze would gather them (_analyze). Beside it, what recounting the day's
quality from all its rows (resolutions.refresh_nights, what every load did before) costs at the
end.

python -m benchmarks.bench_online_log 200000 200     # a day at about 2 answers a second
python -m benchmarks.bench_online_log 5000 100 --skip-postgres
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from benchmarks.common import PostgresSchema, Result, register_model, scratch_folder, stopwatch, table
from pipeline.store import database, labels, online_log, resolutions

POSTGRES_URL = os.environ.get("OVERNIGHT_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
DAY = date(2026, 12, 1)
MODEL = "m1"
PROBE = 5  # loads per point
# autovacuum's default rule to analyze a table again: 50 rows changed plus a tenth of its rows.
AUTOVACUUM_ROWS, AUTOVACUUM_SHARE = 50, 0.1


def results(day_rows: int, load_rows: int, *, postgres: bool = True) -> list[Result]:
    found = _backend_results(
        "SQLite", f"sqlite:///{scratch_folder('bench-online-') / 'overnight.db'}", day_rows, load_rows
    )
    if postgres:
        with PostgresSchema(POSTGRES_URL) as url:
            found += _backend_results("PostgreSQL", url, day_rows, load_rows)
    return found


def _backend_results(backend: str, url: str, day_rows: int, load_rows: int) -> list[Result]:
    engine = database.connect(url)
    register_model(engine, MODEL)
    rng = np.random.default_rng(0)
    labeled = [f"e{n}" for n in range(0, day_rows, 50)]  # every 50th example labeled, before its answer
    labels.load_feedback(engine, pd.DataFrame({"example_id": labeled, "label": "cat"}), source="bench")
    seconds, analyzed = [], 0
    for start in range(0, day_rows, load_rows):
        load = _load(rng, start, load_rows)
        with stopwatch() as took:
            online_log.load_online(engine, load)
        seconds.append(took["seconds"])
        if start + load_rows - analyzed > AUTOVACUUM_ROWS + AUTOVACUUM_SHARE * analyzed:
            _analyze(engine)
            analyzed = start + load_rows
    with stopwatch() as recount, engine.begin() as connection:
        resolutions.refresh_nights(connection, [(DAY, MODEL)])
    first = statistics.median(seconds[:PROBE])
    last = statistics.median(seconds[-PROBE:])
    name = f"online load of {load_rows} rows, {backend}, a day of {day_rows:,}"
    note = (
        f"median of the last {PROBE} loads; baseline: the first {PROBE}, same run; a recount of the "
        f"day's quality from all its rows (every load's cost before) took {recount['seconds']:.3f} s"
    )
    return [Result(name, last, first, "s", "<= 1.5", note)]


def _analyze(engine) -> None:
    """On PostgreSQL, what autovacuum's analyze does as a table grows, untimed: new statistics.

    A day passes in minutes here, and this machine's server runs with autovacuum off; without
    statistics the planner keeps the empty table's row counts and reads the whole day's rows
    for the 200 ids of a load (0.29 s a load at 200,000 rows, measured)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE predictions")


def _load(rng: np.random.Generator, start: int, rows: int) -> pd.DataFrame:
    """`rows` answers: new examples from `start`, a tenth of them again for earlier ones."""
    ids = [f"e{n}" for n in range(start, start + rows)]
    again = rows // 10 if start else 0
    ids[:again] = [f"e{n}" for n in rng.integers(0, start, again)] if again else []
    return pd.DataFrame(
        {
            "batch_date": DAY,
            "example_id": ids,
            "model_version": MODEL,
            "prediction": rng.choice(["cat", "dog"], rows),
            "score": rng.uniform(0.5, 1.0, rows),
            "probabilities": None,
            "requested_at": datetime(2026, 12, 1, 12, tzinfo=UTC),
            "inputs": json.dumps({"size": 1.0, "colour": "red"}),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("day_rows", type=int)
    parser.add_argument("load_rows", type=int)
    parser.add_argument("--skip-postgres", action="store_true")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(table(results(arguments.day_rows, arguments.load_rows, postgres=not arguments.skip_postgres)))


if __name__ == "__main__":
    main()
