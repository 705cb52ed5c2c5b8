"""LogPredictions' loader against a plain bulk load of the same rows, same table shape, same run.

PostgreSQL: pipeline.store.prediction_log.load_batch (DELETE the night, COPY, batches row, one
transaction) against psycopg2 `copy_expert` into a table with the same primary key.
SQLite: load_batch against sqlite3 `executemany` into a table with the same primary key.
"""

from __future__ import annotations

import datetime
import io
import os
import sqlite3
import uuid

import numpy as np
import pandas as pd
import sqlalchemy as sa

from benchmarks.common import Result, scratch_folder, stopwatch
from pipeline.store import database, prediction_log

POSTGRES_URL = os.environ.get("OVERNIGHT_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
NIGHT = datetime.date(2026, 1, 1)
CHUNK = 200_000


def predictions(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "example_id": [f"example-{i:08d}" for i in range(rows)],
            "prediction": rng.integers(0, 10, rows).astype(str),
            "score": rng.random(rows),
            "probabilities": '{"0": 0.1, "1": 0.9}',
        }
    )


def chunks(frame: pd.DataFrame):
    return (frame.iloc[start : start + CHUNK] for start in range(0, len(frame), CHUNK))


def sqlite_results(rows: int) -> list[Result]:
    frame = predictions(rows)
    folder = scratch_folder("bench-sqlite-")
    # Like with like: the baseline writes into the same migrated table, indexes included.
    database.connect(f"sqlite:///{folder / 'baseline.db'}")
    database.dispose_all()
    baseline_db = sqlite3.connect(folder / "baseline.db")
    with stopwatch() as plain:
        # Both start from the same DataFrame: building the tuples counts for the baseline too.
        values = list(
            zip(
                [NIGHT.isoformat()] * rows,
                frame["example_id"],
                ["m"] * rows,
                frame["prediction"],
                frame["score"].tolist(),
                frame["probabilities"],
            )
        )
        baseline_db.executemany(
            "INSERT INTO predictions (batch_date, example_id, model_version, prediction, score, "
            "probabilities) VALUES (?, ?, ?, ?, ?, ?)",
            values,
        )
        baseline_db.commit()
    baseline_db.close()
    engine = database.connect(f"sqlite:///{folder / 'overnight.db'}")
    with stopwatch() as ours:
        prediction_log.load_batch(
            engine, batch_date=NIGHT, model_version="m", predictions=chunks(frame), rows_in=rows, rows_rejected=0
        )
    return [
        Result(
            f"LogPredictions SQLite, {rows:,} rows",
            rows / ours["seconds"],
            rows / plain["seconds"],
            "rows/s",
            ">= 0.7",
            "baseline: sqlite3 executemany into the same table and indexes",
        )
    ]


def postgres_results(rows: int) -> list[Result]:
    frame = predictions(rows)
    base = sa.engine.make_url(POSTGRES_URL)
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(sa.schema.CreateSchema(schema))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        engine = database.connect(url)  # migrates: the predictions table with its primary key
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE baseline (LIKE predictions INCLUDING ALL)")
        plain_seconds = _plain_copy(engine, frame, replace=False)
        plain_rerun_seconds = _plain_copy(engine, frame, replace=True)
        with stopwatch() as ours:
            prediction_log.load_batch(
                engine, batch_date=NIGHT, model_version="m", predictions=chunks(frame), rows_in=rows, rows_rejected=0
            )
        with stopwatch() as rerun:
            prediction_log.load_batch(
                engine, batch_date=NIGHT, model_version="m", predictions=chunks(frame), rows_in=rows, rows_rejected=0
            )
    finally:
        database.dispose_all()
        with admin.begin() as connection:
            connection.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()
    return [
        Result(
            f"LogPredictions PostgreSQL, {rows:,} rows",
            rows / ours["seconds"],
            rows / plain_seconds,
            "rows/s",
            ">= 0.7",
            "baseline: DataFrame to CSV, psycopg2 copy_expert, same primary key",
        ),
        Result(
            f"LogPredictions PostgreSQL rerun (replaces {rows:,})",
            rows / rerun["seconds"],
            rows / plain_rerun_seconds,
            "rows/s",
            ">= 0.7",
            "baseline: DELETE the night's rows, then the same plain COPY, in one transaction",
        ),
    ]


def _plain_copy(engine: sa.Engine, frame: pd.DataFrame, *, replace: bool) -> float:
    """Seconds for psycopg2 to COPY `frame` into `baseline`, first deleting the night when `replace`."""
    raw = engine.raw_connection()
    try:
        with stopwatch() as plain:
            cursor = raw.cursor()
            if replace:
                cursor.execute("DELETE FROM baseline WHERE batch_date = %s AND model_version = 'm'", (NIGHT,))
            # Both start from the same DataFrame: the baseline's CSV serialisation counts too.
            buffer = io.StringIO()
            frame.assign(batch_date=NIGHT.isoformat(), model_version="m")[
                ["batch_date", "example_id", "model_version", "prediction", "score", "probabilities"]
            ].to_csv(buffer, index=False, header=False)
            buffer.seek(0)
            # The columns named, as ours names them: origin and the rest take their defaults.
            cursor.copy_expert(
                "COPY baseline (batch_date, example_id, model_version, prediction, score, probabilities) "
                "FROM STDIN WITH (FORMAT csv)",
                buffer,
            )
            raw.commit()
    finally:
        raw.close()
    return plain["seconds"]
