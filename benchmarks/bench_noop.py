"""Nothing to do is instant: Nightly reruns with everything complete, one night and 365 nights.

Run as a module: the parent builds the data and the nights once, then times fresh processes that
find everything complete (`python -m benchmarks.bench_noop check ...`).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Result, scratch_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST = datetime.date(2025, 1, 1)


def _config(folder: Path) -> Path:
    path = folder / "bench.cfg"
    path.write_text(
        f"[overnight]\ndata_root = {folder / 'data'}\ndatabase_url = sqlite:///{folder / 'data' / 'overnight.db'}\n"
        f"[dataset]\npath = {folder / 'data' / 'raw' / 'digits'}\n[TrainModel]\nepochs = 1\n"
        "[core]\nlog_level = WARNING\nlogging_conf_file =\n"
    )
    return path


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OVERNIGHT_DATABASE_URL"}
    env.update(LUIGI_CONFIG_PATH=str(config), TF_CPP_MIN_LOG_LEVEL="3")
    return env


def _luigi(config: Path, *arguments: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("luigi")), "--module", "tasks", *arguments, "--no-lock"],
        cwd=REPO_ROOT,
        env=_env(config),
        check=True,
        capture_output=True,
        timeout=3600,
    )
    return time.perf_counter() - start


def results(nights: int) -> list[Result]:
    from pipeline.examples import write_examples

    folder = scratch_folder("bench-noop-")
    config = _config(folder)
    examples = write_examples(folder / "data", nights=2, per_night=60)  # the last night is the shifted one
    _luigi(config, "RegisterModel")
    _luigi(config, "Nightly", "--date", examples.nights[0])
    one = _luigi(config, "Nightly", "--date", examples.nights[0])
    dates = [(FIRST + datetime.timedelta(days=i)).isoformat() for i in range(nights)]
    for date in dates:  # empty nights: their folders exist without files (a missing one fails)
        (folder / "data" / "incoming" / date).mkdir(parents=True, exist_ok=True)
    _build_in_child(config, dates)  # the first run of every night
    probe = _build_in_child(config, dates)
    return [
        Result("Nightly rerun, all complete (luigi command, wall)", one, None, "s", "<= 1.5"),
        Result(
            f"{nights} complete nights checked (wall)",
            probe["seconds"],
            None,
            "s",
            "<= 5",
            f"TensorFlow imported: {probe['tensorflow']}; tasks run: {probe['ran']}",
        ),
    ]


def _build_in_child(config: Path, dates: list[str]) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_noop", "check", *dates],
        cwd=REPO_ROOT,
        env=_env(config),
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def check(dates: list[str]) -> dict:
    import luigi

    import tasks

    start = time.perf_counter()
    result = luigi.build(
        [tasks.Nightly(date=datetime.date.fromisoformat(d)) for d in dates],
        local_scheduler=True,
        detailed_summary=True,
        log_level="WARNING",
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "tensorflow": "tensorflow" in sys.modules,
        "ran": "none" if "Did not run any tasks" in result.summary_text else "some",
    }


if __name__ == "__main__" and sys.argv[1:2] == ["check"]:
    print(json.dumps(check(sys.argv[2:])))
