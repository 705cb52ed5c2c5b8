"""Overlapping runs: two nightly runs of one date never double a row; two dates run side by side.

- `scripts/nightly.sh DATE` twice at once: one scores the night, the other exits 10 at once with
  a message saying the date is already running (the script's flock per data set and date);
- the script for two different dates at once: both succeed;
- `luigi --module tasks Nightly --date D` twice at once without the script, with `--no-lock`
  and with Luigi's own pid lock: both end well (the second waits on the task's output lock,
  then finds the work done, or Luigi's lock turns it away with exit 10), and the night is stored
  exactly once;
- two `load_batch` calls of one night at once (both backends): the loads serialise, the night
  holds one load's rows, whole, never a mix or a double.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator

import pandas as pd
import pytest

from pipeline.store import prediction_log
from tests.reliability.conftest import LUIGI, REPO_ROOT, CrashWorld, crash_night_problems, crash_running_runs

# Kills timed against running processes: one worker takes them all, one at a time (pytest.ini).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kills")]
SCRIPT = REPO_ROOT / "scripts" / "nightly.sh"
ALREADY_RUNNING = 10  # luigi.cfg [retcode] already_running, and nightly.sh's refusal


@pytest.fixture
def crash_overlap_world(crash_nightly_world, crash_model) -> Iterator[CrashWorld]:
    # nightly.sh locks and logs per data set and date, under the world's own data root: no other
    # test (or test session) can hold these locks.
    yield crash_nightly_world(nights=4, first_night=datetime.date(2040, 1, 1))


def together(world: CrashWorld, commands: list[list[str]], name: str) -> list[tuple[int, str]]:
    """Start the commands at once; (exit code, output) of each once all ended."""
    logs = [world.root / "logs" / f"{name}-{index}.log" for index in range(len(commands))]
    processes = [world.start(command, log) for command, log in zip(commands, logs)]
    codes = [process.wait(timeout=300) for process in processes]
    return [(code, log.read_text(errors="replace")) for code, log in zip(codes, logs)]


def assert_night_exact(world: CrashWorld, date: str, model: str) -> None:
    problems, lost, duplicated = crash_night_problems(world, date, model)
    assert not problems and lost == 0 and duplicated == 0, problems
    assert not crash_running_runs(world)


def loads_of(world: CrashWorld, date: str) -> int:
    """Successful LogPredictions runs of the night (params: JSON text on SQLite, a dict on PostgreSQL)."""
    runs = world.rows("SELECT params FROM runs WHERE task = 'LogPredictions' AND status = 'succeeded'")
    params = [json.loads(run["params"]) if isinstance(run["params"], str) else run["params"] for run in runs]
    return sum(param.get("date") == date for param in params)


def test_the_script_twice_for_one_date_runs_it_once(crash_overlap_world, crash_model, capsys):
    world, model = crash_overlap_world, crash_model["version"]
    for night in world.nights[:1]:
        outcomes = together(world, [[str(SCRIPT), night], [str(SCRIPT), night]], f"script-{night}")
        codes = sorted(code for code, _ in outcomes)
        assert codes == [0, ALREADY_RUNNING], outcomes
        refused = next(output for code, output in outcomes if code == ALREADY_RUNNING)
        assert f"{night} is already running" in refused and "Traceback" not in refused
        assert_night_exact(world, night, model)
        assert loads_of(world, night) == 1
        with capsys.disabled():
            print(f"\noverlap: nightly.sh {night} twice at once -> exits {codes}, night stored once")


def test_the_script_for_two_dates_at_once_runs_both(crash_overlap_world, crash_model, capsys):
    world, model = crash_overlap_world, crash_model["version"]
    first, second = world.nights[2:4]
    outcomes = together(world, [[str(SCRIPT), first], [str(SCRIPT), second]], "two-dates")
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    for night in (first, second):
        assert_night_exact(world, night, model)
    with capsys.disabled():
        print(f"\noverlap: nightly.sh {first} and {second} at once -> both exit 0, both nights exact")


@pytest.mark.parametrize("lock", ["--no-lock", "luigi-lock"])
def test_luigi_twice_for_one_date_without_the_script_stores_the_night_once(
    crash_overlap_world, crash_model, lock, capsys
):
    world, model = crash_overlap_world, crash_model["version"]
    night = world.nights[0]
    command = [LUIGI, "--module", "tasks", "Nightly", "--date", night] + (["--no-lock"] if lock == "--no-lock" else [])
    outcomes = together(world, [command, command], f"luigi-{lock}")
    codes = sorted(code for code, _ in outcomes)
    if lock == "--no-lock":
        # Both run; the second waits on each task's output lock and then finds the task done.
        assert codes == [0, 0], [output[-2000:] for _, output in outcomes]
    else:
        # Luigi's pid lock turns the second away (exit 10), unless both passed its check together.
        assert codes in ([0, ALREADY_RUNNING], [0, 0]), [output[-2000:] for _, output in outcomes]
    assert_night_exact(world, night, model)
    loads = loads_of(world, night)
    assert loads == 1
    with capsys.disabled():
        print(f"\noverlap: luigi Nightly {night} twice at once ({lock}) -> exits {codes}, {loads} load, night exact")


def test_two_loads_of_one_night_at_once_store_one_whole_load(engine, capsys):
    night, model, rows = datetime.date(2040, 1, 1), "m1", 5_000
    ids = [f"example-{index:05d}" for index in range(rows)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def load(label: str) -> None:
        frame = pd.DataFrame({"example_id": ids, "prediction": label, "score": 0.5})
        start.wait()
        try:
            prediction_log.load_batch(
                engine, batch_date=night, model_version=model, predictions=frame, rows_in=rows, rows_rejected=0
            )
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    began = time.monotonic()
    threads = [threading.Thread(target=load, args=(label,)) for label in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with engine.connect() as connection:
        stored = pd.read_sql("SELECT example_id, prediction FROM predictions", connection)
        marker = pd.read_sql("SELECT rows_scored FROM batches", connection)
    assert len(stored) == rows and stored["example_id"].is_unique
    assert stored["prediction"].nunique() == 1, "rows of both loads: the loads interleaved"
    assert marker["rows_scored"].tolist() == [rows]
    with capsys.disabled():
        print(
            f"\noverlap: two load_batch of one night at once on {engine.dialect.name} -> {len(stored)} rows, "
            f"one load, {time.monotonic() - began:.1f} s"
        )
