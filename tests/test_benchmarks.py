"""`make bench-tiny`: every benchmark runs end to end on small sizes and prints its figure.

The figures themselves are not asserted (timings belong in `make bench`, not in tests); what is
asserted is that each benchmark runs, prints a row beside its target, and that the no-op probe
really found nothing to do without importing TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import postgres_base_url

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]
# The benchmarks in four runs of `run_all --tiny --only ...`, which workers take side by side;
# each group -> benchmark -> the figures it prints.
GROUPS = {
    "database": {
        "log-sqlite": ("LogPredictions SQLite",),
        "log-postgres": ("LogPredictions PostgreSQL,", "LogPredictions PostgreSQL rerun"),
        "fingerprint": ("fingerprint 32 MB unchanged",),
        "noop": ("Nightly rerun, all complete", "TrainModel rerun, all complete", "5 complete nights checked"),
        "drift": ("drift and quality checks, 10,000 rows",),
    },
    "scoring": {
        "scoring": ("batch scoring end to end", "peak memory"),
        "night": (
            "night scored and logged, SQLite, 2,000 rows",
            "night scored and logged, PostgreSQL, 2,000 rows",
            "night of 200 PNG files scored and logged, SQLite",
        ),
        "decoding": ("first-epoch decoding, 100 48-px PNG", "first-epoch decoding, 100 640-px JPG"),
        "gpu": (),  # rows only where a GPU is visible: checked below
    },
    "training": {
        "training": ("training steps/s", "TrainModel wall time"),
        "image-size": (
            "fit the preprocessor, a 3000x3000 PNG (",
            "fit the preprocessor, a 3000x3000 PNG first, peak memory",
        ),
        "quality": ("quality wine: auto - best baseline",),
    },
    "history": {
        "shards": ("night of 8,000 rows, 2 shards on 2 workers",),
        "online-log": ("online load of 100 rows, SQLite", "online load of 100 rows, PostgreSQL"),
        "history": tuple(
            figure
            for backend in ("SQLite", "PostgreSQL")
            for figure in (
                f"night monitoring {backend}, middle nights",
                f"night monitoring {backend}, last nights",
                f"label load with kappa {backend}, last nights",
                f"night report and alerts {backend}, last nights",
                f"cookbook 2. quality per night, {backend}",
                f"cookbook 9. conflicts per night, {backend}",
                f"cookbook 10. annotator agreement, {backend}",
                f"cookbook 12. examples to adjudicate, {backend}",
            )
        ),
    },
}


def _postgres_reachable() -> bool:
    engine = sa.create_engine(postgres_base_url(), poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL unreachable (CI=true: the PostgreSQL benchmark must run)")
        return False
    finally:
        engine.dispose()


def test_every_benchmark_is_in_one_group():
    from benchmarks.run_all import BENCHMARKS

    grouped = [name for group in GROUPS.values() for name in group]
    assert sorted(grouped) == sorted(BENCHMARKS)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_tiny_benchmarks_print_every_figure_beside_its_target(group, tmp_path):
    benchmarks = GROUPS[group]
    figures = [figure for names in benchmarks.values() for figure in names]
    postgres = any("PostgreSQL" in figure for figure in figures)
    skip_postgres = postgres and not _postgres_reachable()
    if skip_postgres:
        figures = [figure for figure in figures if "PostgreSQL" not in figure]
    env = dict(
        os.environ, TMPDIR=str(tmp_path), OVERNIGHT_BENCH_POSTGRES_URL=postgres_base_url(), TF_CPP_MIN_LOG_LEVEL="3"
    )
    env.pop("OVERNIGHT_DATABASE_URL", None)
    command = [sys.executable, "-m", "benchmarks.run_all", "--tiny", *(f"--only={name}" for name in benchmarks)]
    if skip_postgres:
        command.append("--skip-postgres")
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]

    table = completed.stdout.splitlines()
    assert table[0].split() == ["figure", "value", "baseline", "ratio", "target", "met"]
    for figure in figures:
        rows = [line for line in table if line.startswith(figure)]
        assert len(rows) == 1, f"{figure!r} missing from:\n{completed.stdout}"
        assert rows[0].split()[-3] in (">=", "<=") and rows[0].split()[-1] in ("yes", "NO"), rows[0]
    if "noop" in benchmarks:
        assert "TensorFlow imported: False; tasks run: none" in completed.stdout
    if "gpu" in benchmarks:
        from benchmarks.bench_gpu import gpu_visible

        gpu_rows = [line for line in table if line.startswith(("cnn images/s", "input waiting"))]
        assert len(gpu_rows) == (4 if gpu_visible() else 0), completed.stdout
        assert ("GPU figures: not measured" in completed.stdout) == (not gpu_visible())
    assert not list(tmp_path.glob("bench-*")), "a benchmark left its scratch folder behind"
