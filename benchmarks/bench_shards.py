"""A night scored whole by one worker against the same night in two shards on two workers.

The project's own commands on one data root: a tabular model registered (1 epoch), then a night
of ROWS rows in four CSV files scored by `luigi --module tasks BatchPredict` twice per round, on
nights of identical files: `--shards 1 --workers 1` (the baseline) and `--shards 2 --workers 2`
(two ScoreShard tasks in two worker processes, then merged). Wall time of the whole command,
process start included, as cron sees it; rounds alternated, medians. The speed-up's ceiling on
this machine is its cores: each worker process scores on one.

    python -m benchmarks.bench_shards ROWS ROUNDS
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_scoring import _frame
from benchmarks.common import Result, run_child, scratch_folder

FILES = 4
TARGET = ">= 1.2"  # two cores: what a second worker brings once per-process start and the merge are paid
LUIGI = str(Path(sys.executable).with_name("luigi"))


def results(rows: int, rounds: int) -> list[Result]:
    measured = run_child("benchmarks.bench_shards", str(rows), str(rounds), timeout=3600)
    return [
        Result(
            f"night of {rows:,} rows, 2 shards on 2 workers",
            rows / measured["sharded"],
            rows / measured["whole"],
            "rows/s",
            TARGET,
            note=f"whole {measured['whole']:.1f} s, sharded {measured['sharded']:.1f} s, {os.cpu_count()} cores",
        )
    ]


def measure(rows: int, rounds: int) -> dict:
    root = scratch_folder("bench-shards-")
    training = root / "training.csv"
    _frame(2000, 0, labeled=True).to_csv(training, index=False)
    config = root / "luigi.cfg"
    config.write_text(
        "[core]\nlocal_scheduler = true\nno_lock = true\n"
        f"[overnight]\ndata_root = {root / 'data'}\ndatabase_url = sqlite:///{root / 'overnight.db'}\n"
        f"[dataset]\npath = {training}\nlabel = label\nid_column = id\n"
        "[TrainModel]\nepochs = 1\narchitecture = mlp\n"
    )
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(config), "TF_CPP_MIN_LOG_LEVEL": "2"}
    _luigi(env, "RegisterModel")
    night = root / "night"
    night.mkdir()
    for part in range(FILES):
        _frame(rows // FILES, 1 + part, labeled=False).to_csv(night / f"part-{part}.csv", index=False)
    seconds: dict[str, list[float]] = {"whole": [], "sharded": []}
    day = datetime.date(2031, 1, 1)
    for _ in range(rounds):
        for name, shards in (("whole", 1), ("sharded", 2)):
            day += datetime.timedelta(days=1)
            shutil.copytree(night, root / "data" / "incoming" / day.isoformat())
            start = time.perf_counter()
            _luigi(env, "BatchPredict", "--date", day.isoformat(), "--shards", str(shards), workers=shards)
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def _luigi(env: dict, task: str, *arguments: str, workers: int = 1) -> None:
    command = [LUIGI, "--module", "tasks", task, *arguments, "--workers", str(workers)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {completed.stderr[-2000:]}")


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), int(sys.argv[2]))))
