"""Crash harness: SIGKILL training and nightly runs at random moments, rerun, check every promise.

Each trial starts `luigi --module tasks ...` as a subprocess in its own process group, kills the
group with SIGKILL at a moment drawn from a seeded RNG (or at a pause point: in the middle of a
database load, before a stage's rename, before a run is recorded finished; or the instant
`model.keras` appears in a temporary training folder), then checks the state the kill left and
reruns the same command to completion:

- no half-written output is taken for a finished one: every stage folder in place holds all its
  expected files and each reads back (Parquet, JSON, CSV, NPZ, PNG, the .keras archive; at the
  end every model loads in Keras);
- the database never shows half a load or loses an earlier one, and after the rerun every
  (date, example, model) is in `predictions` exactly once, with exactly the night's readable
  images (files minus rejects);
- the run the kill interrupted is `abandoned` after the rerun, none stays `running`, and no
  temporary folder or held lock is left behind.

    pytest tests/reliability -m slow -s                 # prints the per-stage figures
    pytest tests/reliability -m slow -s --kills=full    # the whole campaign (docs/reliability-crash.md)

The suite runs each plan's core: every kind of kill moment, in a load and in a reload; the whole
campaign adds more random moments and more of each kind (about twice the kills and the minutes).
"""

from __future__ import annotations

import random
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from tests.conftest import _postgres_schema_url
from tests.reliability.conftest import (
    LUIGI,
    CrashLedger,
    CrashWorld,
    crash_database_problems,
    crash_kill,
    crash_leftover_problems,
    crash_models_load,
    crash_new_world,
    crash_night_problems,
    crash_output_problems,
    crash_pause_env,
    crash_running_runs,
    crash_wait_for_path,
    crash_wait_for_pause,
)

# Kills timed against running processes: one worker takes them all, one at a time (pytest.ini).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kills")]
SEED = 20311105
MID_LOAD = "prediction-log:mid-load"
MODEL_SAVE = "model-save"


@dataclass
class Trial:
    command: tuple[str, ...]
    how: str  # "random", MODEL_SAVE, or a pause point
    window: tuple[float, float] = (0.0, 0.0)  # random: the kill comes this many seconds after the start
    date: str | None = None  # a night: checked row by row after the rerun
    late: int = 0  # images that arrive before this run: it reloads a night already loaded
    late_after_kill: int = 0  # images that arrive between the kill and the rerun: a new version
    poll: str = "05_training/*-luigi-tmp-*/model.keras"  # MODEL_SAVE: the kill comes when this appears
    alternates: tuple[tuple[str, ...], ...] = ()  # random: commands with new work, if the run ends first


@dataclass
class Kill:
    trial: Trial
    stage: str  # the task whose run was `running` when the kill came
    problems_after_kill: list[str] = field(default_factory=list)
    problems_after_rerun: list[str] = field(default_factory=list)
    rows_lost: int = 0
    rows_duplicated: int = 0
    runs_killed: int = 0  # `running` rows of the killed process: each must end `abandoned`
    note: str = ""

    @property
    def survived(self) -> bool:
        return not self.problems_after_kill and not self.problems_after_rerun


def run_trial(world: CrashWorld, trial: Trial, rng: random.Random, index: int, model: str | None = None) -> Kill | None:
    """One kill and its rerun; None when the run finished before its random moment came."""
    before = CrashLedger.read(world)
    if trial.late:
        world.add_late_files(trial.date, trial.late)
    log = world.root / "logs" / f"{index:02d}-{'-'.join(trial.command)}.log"
    pause = trial.how not in ("random", MODEL_SAVE)
    process = world.start(
        [LUIGI, "--module", "tasks", *trial.command], log, **(crash_pause_env(trial.how) if pause else {})
    )
    started, note = time.monotonic(), ""
    if trial.how == "random":
        delay = rng.uniform(*trial.window)
        while process.poll() is None and time.monotonic() - started < delay:
            time.sleep(0.005)
        if process.poll() is not None:
            return None
        note = f"at {delay:.2f} s"
    elif trial.how == MODEL_SAVE:
        saving = crash_wait_for_path(process, trial.poll, world.data)
        assert saving is not None, f"the training ended before it saved a model:\n{log.read_text()[-3000:]}"
        time.sleep(rng.uniform(0.0, 0.03))
    else:
        crash_wait_for_pause(process, log, trial.how)
        time.sleep(rng.uniform(0.0, 0.2))
    crash_kill(process)

    if trial.how == MODEL_SAVE:
        note = "model.keras torn by the kill" if not _whole_zip(saving) else "model.keras whole"
    killed = crash_running_runs(world, process.pid)
    stage = ",".join(run["task"] for run in killed) or "startup or between tasks"
    kill = Kill(trial, stage, runs_killed=len(killed), note=note)
    kill.problems_after_kill = crash_output_problems(world.data) + crash_database_problems(world, before)
    if any(run["status"] != "running" for run in killed):
        kill.problems_after_kill.append("a killed run was settled before any process restarted")

    if trial.late_after_kill:
        world.add_late_files(trial.date, trial.late_after_kill)
    rerun = world.luigi(*trial.command)
    problems = kill.problems_after_rerun
    if rerun.returncode != 0:
        problems.append(f"rerun exit {rerun.returncode}: {rerun.stderr[-1500:]}")
    problems += crash_output_problems(world.data) + crash_database_problems(world, before)
    problems += crash_leftover_problems(world)
    status = {row["run_id"]: row["status"] for row in world.rows("SELECT run_id, status FROM runs")}
    problems += [
        f"killed run of {run['task']} is {status[run['run_id']]}, not abandoned"
        for run in killed
        if status[run["run_id"]] != "abandoned"
    ]
    problems += [f"run of {run['task']} still running after the rerun" for run in crash_running_runs(world)]
    if trial.date:
        night, kill.rows_lost, kill.rows_duplicated = crash_night_problems(world, trial.date, model)
        problems += night
    return kill


def _whole_zip(path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def run_plan(world: CrashWorld, plan: list[Trial], seed: int, model: str | None = None) -> list[Kill]:
    """Every trial of the plan; a random kill that comes after its run ended is tried again on
    the trial's alternate commands, each time in the first half of the window before."""
    rng = random.Random(seed)
    kills = []
    for index, trial in enumerate(plan):
        kill = run_trial(world, trial, rng, index, model)
        for number, command in enumerate(trial.alternates):
            if kill is not None:
                break
            low, high = trial.window
            trial = replace(trial, command=command, window=(low / 2, (low + high) / 2))
            kill = run_trial(world, trial, rng, index * 10 + number + 1, model)
        if kill is not None:
            kills.append(kill)
    return kills


def summary(name: str, kills: list[Kill], seconds: float) -> str:
    by_stage = Counter(kill.stage for kill in kills)
    survived = sum(kill.survived for kill in kills)
    lost = sum(kill.rows_lost for kill in kills)
    duplicated = sum(kill.rows_duplicated for kill in kills)
    moments = Counter(kill.trial.how for kill in kills)
    interrupted = sum(kill.runs_killed for kill in kills)
    abandoned = sum(
        kill.runs_killed
        for kill in kills
        if not any("not abandoned" in problem for problem in kill.problems_after_rerun)
    )
    return (
        f"crash harness [{name}]: {survived}/{len(kills)} kills survived in {seconds:.0f} s; rows lost {lost}, "
        f"rows duplicated {duplicated}; killed runs marked abandoned {abandoned}/{interrupted}; "
        f"by stage {dict(sorted(by_stage.items()))}; by moment {dict(sorted(moments.items()))}"
    )


def report(capsys, name: str, kills: list[Kill], started: float) -> None:
    with capsys.disabled():
        print()
        for number, kill in enumerate(kills):
            verdict = "ok" if kill.survived else "FAILED"
            print(
                f"  kill {number:2d} {verdict:6s} {' '.join(kill.trial.command):45s} {kill.trial.how:34s} "
                f"-> {kill.stage} {kill.note}"
            )
        print(summary(name, kills, time.monotonic() - started))


def failures(kills: list[Kill]) -> str:
    return "\n".join(
        f"{' '.join(kill.trial.command)} [{kill.trial.how}] killed in {kill.stage}: "
        f"after the kill {kill.problems_after_kill}; after the rerun {kill.problems_after_rerun}"
        for kill in kills
        if not kill.survived
    )


def training_plan() -> list[Trial]:
    """Kills across the training chain; every trial changes a parameter, so there is work to kill."""
    # Windows end before a quiet machine would finish the run (a run that ends first is no kill,
    # and the trial moves on to its alternates). The stages before TrainModel take about half a
    # second from 1.5 s in; FitPreprocessor as the target spares the TensorFlow import.
    fresh, features, train, register = (1.0, 3.0), (0.9, 2.2), (1.2, 4.5), (1.5, 5.5)

    def seeds(task: str, first: int) -> tuple[tuple[str, ...], ...]:
        root = "FitPreprocessor" if task == "SplitData" else "TrainModel"
        return tuple((root, f"--{task}-seed", str(seed)) for seed in (first, first + 1))

    return [
        Trial(("TrainModel",), "random", fresh, alternates=seeds("SplitData", 121)),  # every stage to training
        Trial(("FitPreprocessor", "--SplitData-seed", "101"), "random", features, alternates=seeds("SplitData", 111)),
        Trial(("FitPreprocessor", "--SplitData-seed", "109"), "stage:before-rename:SplitData"),
        Trial(("TrainModel", "--TrainModel-seed", "102"), "random", train, alternates=seeds("TrainModel", 131)),
        Trial(("RegisterModel", "--TrainModel-seed", "103"), "random", register, alternates=seeds("TrainModel", 141)),
        Trial(("TrainModel", "--TrainModel-seed", "104"), MODEL_SAVE),
        Trial(("TrainModel", "--TrainModel-seed", "105"), MODEL_SAVE),
        Trial(("TrainModel", "--TrainModel-seed", "106"), "stage:before-rename:TrainModel"),
        Trial(("RegisterModel", "--TrainModel-seed", "107"), "run:before-finish:RegisterModel"),
        Trial(("RegisterModel", "--TrainModel-seed", "108"), "random", register, alternates=seeds("TrainModel", 151)),
    ]


def nightly_plan(nights: list[str], backend: str) -> list[Trial]:
    """Kills across the nightly chain, several in the middle of a load, three in a reload."""
    window = (0.8, 3.5)  # a quiet machine scores a small night in about 4 s

    def night(index: int, how: str, late: int = 0, late_after_kill: int = 0) -> Trial:
        return Trial(("Nightly", "--date", nights[index]), how, window, nights[index], late, late_after_kill)

    if backend == "postgresql":
        return [
            night(0, MID_LOAD),
            night(1, "random"),
            night(2, "run:before-finish:LogPredictions"),
            night(0, MID_LOAD, late=4),
            night(3, "random"),
        ]
    return [
        night(0, "random"),
        night(1, "random"),
        night(2, MID_LOAD),
        night(3, "random"),
        night(4, "stage:before-rename:BatchPredict", late_after_kill=3),
        night(5, "run:before-finish:LogPredictions"),
        night(6, "run:before-finish:Nightly"),
        night(0, MID_LOAD, late=4),
        night(1, "random", late=4),
        night(7, "random"),
        night(2, MID_LOAD, late=3),
        night(3, "random", late=2),
    ]


def campaign(request, plan: list[Trial], core: tuple[int, ...]) -> list[Trial]:
    """The plan's trials `--kills` asks for: every one (full), or those at the `core` indices."""
    return plan if request.config.getoption("--kills") == "full" else [plan[index] for index in core]


def run_and_report(capsys, name: str, plan: list[Trial], world: CrashWorld, seed: int, model: str | None = None):
    """Run one plan in its world, print every kill and the summary; -> the kills."""
    started = time.monotonic()
    kills = run_plan(world, plan, seed, model=model)
    report(capsys, name, kills, started)
    return kills


def mid_load_kills(kills: list[Kill]) -> int:
    return sum(kill.trial.how == MID_LOAD and kill.stage == "LogPredictions" for kill in kills)


# The training plan in two halves, each in a world of its own, so that neither nears the suite's
# time limit for one test; each half's core: a random kill of the whole chain, SplitData's rename
# and a random kill in training; a model half saved, training's rename, RegisterModel's record.
TRAINING_HALVES = {"first": slice(0, 5), "second": slice(5, 10)}
TRAINING_CORE = {"first": (0, 2, 3), "second": (0, 2, 3)}


@pytest.mark.parametrize("half", sorted(TRAINING_HALVES))
def test_training_runs_survive_kills(half, tmp_path, capsys, request):
    plan = campaign(request, training_plan()[TRAINING_HALVES[half]], TRAINING_CORE[half])
    world = crash_new_world(tmp_path / "training")
    kills = run_and_report(capsys, f"training, {half} half, sqlite", plan, world, SEED)
    assert not failures(kills), failures(kills)
    stages = {kill.stage for kill in kills}
    # At least 20 of the 22 kills of training and the SQLite night, as when one test ran both: one
    # random kill may come after its run ended here (the first half is mostly random moments), one
    # in the night; the second half's one random trial has two alternates in ever earlier windows.
    if half == "first":  # random kills across the chain, and one before SplitData's rename
        assert len(kills) >= len(plan) - 1, f"{len(kills)} of {len(plan)}: too many runs ended before their kill"
        assert "SplitData" in stages
    else:  # a model half saved, training's rename, RegisterModel's record
        assert len(kills) == len(plan), f"{len(kills)} of {len(plan)}: a run ended before its kill"
        saves = [kill for kill in kills if kill.trial.how == MODEL_SAVE and kill.stage == "TrainModel"]
        assert len(saves) == sum(trial.how == MODEL_SAVE for trial in plan), "a kill missed the model's save"
        assert {"TrainModel", "RegisterModel"} <= stages
    assert not crash_models_load(world.data)


# The SQLite nightly plan in two worlds: the first nights and their reloads (every kill inside a
# load, every random moment), and the nights cut at fixed moments (before BatchPredict's rename
# with files arriving before the rerun, before LogPredictions' and Nightly's runs are finished).
# The core of the reloads: a random kill, a kill mid-load, and two mid-load kills of reloads.
NIGHTLY_PARTS = {"reloads": (0, 1, 2, 3, 7, 8, 9, 10, 11), "moments": (4, 5, 6)}
NIGHTLY_CORE = {"reloads": (0, 2, 4, 7), "moments": (0, 1, 2)}
POSTGRESQL_CORE = (0, 2, 3)  # mid-load, after the commit before the run is finished, mid-reload


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.mark.parametrize("part", sorted(NIGHTLY_PARTS))
def test_nightly_runs_survive_kills_on_sqlite(part, crash_nightly_world, crash_model, capsys, request):
    world = crash_nightly_world(nights=8, late_nights=1)
    everything = nightly_plan(world.nights, "sqlite")
    plan = campaign(request, [everything[index] for index in NIGHTLY_PARTS[part]], NIGHTLY_CORE[part])
    kills = run_and_report(capsys, f"nightly, {part}, sqlite", plan, world, SEED + 1, model=crash_model["version"])
    assert not failures(kills), failures(kills)
    stages = {kill.stage for kill in kills}
    if part == "reloads":  # one random kill may come after its night ended (11 of 12 in all)
        assert len(kills) >= len(plan) - 1, f"{len(kills)} of {len(plan)}: too many runs ended before their kill"
        assert mid_load_kills(kills) >= 2, "too few kills in the middle of a database load"
    else:
        assert len(kills) == len(plan), f"{len(kills)} of {len(plan)}: a run ended before its kill"
        assert {"BatchPredict", "LogPredictions"} <= stages


def test_nightly_loads_through_copy_survive_kills_on_postgresql(
    postgres_url, crash_nightly_world, crash_model, capsys, request
):
    world = crash_nightly_world(postgres_url, nights=4, late_nights=1)
    plan = campaign(request, nightly_plan(world.nights, "postgresql"), POSTGRESQL_CORE)
    kills = run_and_report(capsys, "nightly, postgresql", plan, world, SEED + 1, model=crash_model["version"])
    assert not failures(kills), failures(kills)
    assert mid_load_kills(kills) >= 2, "too few kills in the middle of a database load"
    assert len(kills) == len(plan), f"{len(kills)} of {len(plan)}: a run ended before its kill"
