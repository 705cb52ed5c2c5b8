"""Nothing to do is instant: Nightly and TrainModel reruns with everything complete, one night
and 365 nights, against Luigi's own floor.

Run as a module: the parent builds the data and the nights once, then times fresh processes that
find everything complete (`python -m benchmarks.bench_noop check ...`). The floor is a bare Luigi
graph of as many `LocalTarget` tasks, all complete, run by the same `luigi` command in the same
venv; rounds alternate and each figure is a median.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Result, scratch_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
FIRST = datetime.date(2025, 1, 1)
ROUNDS = 5
NOOP_TARGET = "<= 2.0"  # times the bare graph
BARE_GRAPH = """
import luigi


class Bare(luigi.Task):
    number = luigi.IntParameter()

    def requires(self):
        return [Bare(number=self.number - 1)] if self.number else []

    def output(self):
        return luigi.LocalTarget(f"{folder}/bare-{{self.number}}")
"""


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


def _luigi(config: Path, *arguments: str, module: str = "tasks", path: Path | None = None) -> float:
    env = _env(config)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("luigi")), "--module", module, *arguments, "--no-lock"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=3600,
    )
    return time.perf_counter() - start


def _bare_graph(folder: Path, tasks: int) -> Path:
    """A module of `tasks` chained LocalTarget tasks whose outputs all exist; returns its folder."""
    module = folder / "bare"
    module.mkdir(parents=True)
    (module / "bare_graph.py").write_text(BARE_GRAPH.format(folder=module))
    for number in range(tasks):
        (module / f"bare-{number}").write_text("done")
    return module


def _graph_size(config: Path, task: str, *arguments: str) -> int:
    """How many distinct tasks the graph under `task` holds (Luigi's own walk of requires())."""
    code = (
        "import json, luigi.cmdline_parser, luigi.task\n"
        f"parser = luigi.cmdline_parser.CmdlineParser({['--module', 'tasks', task, *arguments]!r})\n"
        "root = parser.get_task_obj()\n"
        "seen, pending = set(), [root]\n"
        "while pending:\n"
        "    node = pending.pop()\n"
        "    if node.task_id not in seen:\n"
        "        seen.add(node.task_id)\n"
        "        pending += luigi.task.flatten(node.requires())\n"
        "print(len(seen))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(config), capture_output=True, text=True, check=True
    )
    return int(completed.stdout.strip().splitlines()[-1])


def _medians(runs: dict, rounds: int) -> dict:
    """Each command's median over `rounds` rounds, the commands alternated within a round."""
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def results(nights: int, rounds: int = ROUNDS) -> list[Result]:
    from pipeline.examples import write_examples

    folder = scratch_folder("bench-noop-")
    config = _config(folder)
    examples = write_examples(folder / "data", nights=2, per_night=60)  # the last night is the shifted one
    _luigi(config, "RegisterModel")
    night = ("Nightly", "--date", examples.nights[0])
    _luigi(config, *night)
    sizes = {"nightly": _graph_size(config, *night), "training": _graph_size(config, "TrainModel")}
    bare = {name: _bare_graph(folder / name, count) for name, count in sizes.items()}
    medians = _medians(
        {
            "nightly": lambda: _luigi(config, *night),
            "nightly floor": lambda: _luigi(
                config, "Bare", "--number", str(sizes["nightly"] - 1), module="bare_graph", path=bare["nightly"]
            ),
            "training": lambda: _luigi(config, "TrainModel"),
            "training floor": lambda: _luigi(
                config, "Bare", "--number", str(sizes["training"] - 1), module="bare_graph", path=bare["training"]
            ),
        },
        rounds,
    )
    dates = [(FIRST + datetime.timedelta(days=i)).isoformat() for i in range(nights)]
    for date in dates:  # empty nights: their folders exist without files (a missing one fails)
        (folder / "data" / "incoming" / date).mkdir(parents=True, exist_ok=True)
    _build_in_child(config, dates)  # the first run of every night
    probe = _build_in_child(config, dates)
    return [
        Result(
            "Nightly rerun, all complete (luigi command, wall)",
            medians["nightly"],
            medians["nightly floor"],
            "s",
            NOOP_TARGET,
            f"baseline: a bare Luigi graph of {sizes['nightly']} complete LocalTarget tasks, same luigi command",
        ),
        Result(
            "TrainModel rerun, all complete (luigi command, wall)",
            medians["training"],
            medians["training floor"],
            "s",
            NOOP_TARGET,
            f"baseline: a bare Luigi graph of {sizes['training']} complete LocalTarget tasks, same luigi command",
        ),
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
