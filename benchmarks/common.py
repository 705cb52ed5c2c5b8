"""Shared pieces of the benchmarks: results with their targets, a table, peak memory of a child."""

from __future__ import annotations

import atexit
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    """One measured figure beside its baseline and target (`ratio` is value / baseline)."""

    name: str
    value: float
    baseline: float | None
    unit: str
    target: str  # e.g. ">= 0.95" or "<= 1.10": compared with the ratio, or the value without baseline
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.value / self.baseline

    @property
    def met(self) -> bool:
        operator, limit = self.target.split()
        measured = self.ratio if self.ratio is not None else self.value
        return measured >= float(limit) if operator == ">=" else measured <= float(limit)


def table(results: list[Result]) -> str:
    rows = [("figure", "value", "baseline", "ratio", "target", "met")]
    for r in results:
        rows.append(
            (
                r.name,
                f"{r.value:,.3f} {r.unit}",
                "" if r.baseline is None else f"{r.baseline:,.3f} {r.unit}",
                "" if r.ratio is None else f"{r.ratio:.2f}",
                r.target,
                "yes" if r.met else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = [f"  {r.name}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["notes:"] + notes if notes else []))


@contextmanager
def stopwatch():
    """Yields a dict whose "seconds" is filled in when the block ends."""
    measured = {}
    start = time.perf_counter()
    try:
        yield measured
    finally:
        measured["seconds"] = time.perf_counter() - start


def run_child(module: str, *arguments: str, timeout: float = 1800) -> dict:
    """Run `python -m module arguments` and return the JSON it prints last.

    A fresh process per measurement: its peak memory (see peak_rss_mb) is the measured work's.
    """
    completed = subprocess.run(
        [sys.executable, "-m", module, *arguments], capture_output=True, text=True, timeout=timeout
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scratch_folder(prefix: str) -> Path:
    """A temporary folder removed when this process exits (a full run writes gigabytes)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


class PostgresSchema:
    """A schema of its own on the benchmark's PostgreSQL (`url`), dropped at exit; -> its URL."""

    def __init__(self, url: str):
        self.url = url

    def __enter__(self) -> str:
        import sqlalchemy as sa

        base = sa.engine.make_url(self.url)
        self.admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
        self.schema = f"bench_{uuid.uuid4().hex[:12]}"
        with self.admin.begin() as connection:
            connection.execute(sa.schema.CreateSchema(self.schema))
        return base.update_query_dict({"options": f"-csearch_path={self.schema}"}).render_as_string(hide_password=False)

    def __exit__(self, *exc) -> None:
        import sqlalchemy as sa

        from pipeline.store import database

        database.dispose_all()
        with self.admin.begin() as connection:
            connection.execute(sa.schema.DropSchema(self.schema, cascade=True))
        self.admin.dispose()


def register_model(engine, version: str, task: str = "classification") -> None:
    """A registered model no folder backs: what loads, views and reports read of it."""
    from pipeline.store import registry

    registry.register(
        engine,
        version=version,
        run_id=None,
        path=f"models/{version}",
        sha256="0" * 64,
        task=task,
        data_version="d1",
        evaluation_path=None,
        headline=None,
        metrics=None,
        actor="bench",
    )
