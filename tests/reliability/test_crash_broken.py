"""The crash harness has teeth: run against a deliberately broken copy of the code, it fails.

Each test copies the code (tasks/, pipeline/, models/, luigi.cfg, logging.ini) to a scratch
folder, breaks one promise there with a textual patch, and runs a few harness trials against the
copy (PYTHONPATH puts it ahead of the installed package). The repository itself is never
changed. The harness must report the breakage; these tests fail if it does not.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import REPO_ROOT, crash_new_world
from tests.reliability.test_crash import MID_LOAD, SEED, Trial, report, run_trial

# Kills timed against running processes: one worker takes them all, one at a time (pytest.ini).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("kills")]

# The delete of an earlier load committed on its own, before the new rows: "the delete and the
# inserts in separate transactions".
SPLIT_LOAD = {
    "pipeline/store/prediction_log.py": (
        "        write = row_writer(connection)\n",
        "        connection.commit()  # BROKEN: the delete commits alone\n        write = row_writer(connection)\n",
    )
}
# The stage writes straight into its final folder: no temporary path, no rename.
NO_RENAME = {
    "tasks/base/stage.py": (
        "        with self.output().temporary_path() as temporary:\n            out_dir = Path(temporary)\n"
        "            out_dir.mkdir(parents=True)\n",
        "        with __import__('contextlib').nullcontext(self.output().path) as temporary:  # BROKEN\n"
        "            out_dir = Path(temporary)\n            out_dir.mkdir(parents=True, exist_ok=True)\n",
    )
}


def broken_copy(root: Path, patches: dict[str, tuple[str, str]]) -> Path:
    repo = root / "broken-repo"
    for folder in ("tasks", "pipeline", "models"):
        shutil.copytree(REPO_ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("luigi.cfg", "logging.ini"):
        shutil.copy(REPO_ROOT / name, repo / name)
    for relative, (old, new) in patches.items():
        path = repo / relative
        text = path.read_text()
        assert text.count(old) == 1, f"the patch no longer applies to {relative}"
        path.write_text(text.replace(old, new))
    return repo


def test_a_load_whose_delete_commits_alone_fails_the_harness(crash_nightly_world, crash_model, tmp_path, capsys):
    started = time.monotonic()
    world = crash_nightly_world(nights=1, late_nights=1, repo=broken_copy(tmp_path, SPLIT_LOAD))
    night = world.nights[0]
    first = world.luigi("Nightly", "--date", night)
    assert first.returncode == 0, first.stderr[-2000:]
    # Late files make a new prediction output; its load replaces the night and is killed midway.
    reload = Trial(("Nightly", "--date", night), MID_LOAD, date=night, late=4)
    kill = run_trial(world, reload, random.Random(SEED), 0, crash_model["version"])
    report(capsys, "broken: delete committed alone", [kill], started)
    with capsys.disabled():
        print(f"  harness found: {kill.problems_after_kill + kill.problems_after_rerun}")
    assert not kill.survived
    assert any("earlier complete load" in problem and "is gone" in problem for problem in kill.problems_after_kill)


def test_a_stage_without_its_atomic_rename_fails_the_harness(tmp_path, capsys):
    started = time.monotonic()
    world = crash_new_world(tmp_path / "training", repo=broken_copy(tmp_path, NO_RENAME))
    # Killed with the model saved and its side files not yet written.
    saving = Trial(("TrainModel",), "model-folder:saved")
    kill = run_trial(world, saving, random.Random(SEED), 0)
    report(capsys, "broken: no atomic rename", [kill], started)
    with capsys.disabled():
        print(f"  harness found: {kill.problems_after_kill + kill.problems_after_rerun}")
    assert not kill.survived
    # The half-written folder is in place, and the rerun takes it for finished: it stays broken.
    assert any("is in place without" in problem for problem in kill.problems_after_kill)
    assert any("is in place without" in problem for problem in kill.problems_after_rerun)
