"""A production model whose seal was deleted is not taken as good (issue 31, case 2).

Classes "3" and "8" swapped in preprocessor.json (same size, so only a hash sees it) and
integrity.json deleted: the night used to seal the damaged file as it found it and score with
it. Now the registry holds the hash of every file scoring reads (`model_versions.files`,
migration 0013): a lost seal is rebuilt only from files those hashes vouch for, a model
registered before them (model.keras's hash alone) cannot vouch for its preprocessor, and the
night stops with one line naming the file and the documented exit code for a damaged output (30, docs/nightly.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.artifacts.folder import INTEGRITY
from pipeline.store import database, registry
from tests.reliability.conftest import CrashWorld, crash_copy_nights

OVERNIGHT = str(Path(sys.executable).with_name("overnight"))
pytestmark = pytest.mark.slow


def swap_three_and_eight(path: Path) -> None:
    text = path.read_text()
    swapped = text.replace('"3"', '"\0"').replace('"8"', '"3"').replace('"\0"', '"8"')
    assert swapped != text and len(swapped) == len(text)
    path.write_text(swapped)


def world_with_a_copied_model(tmp_path, url, crash_model, crash_examples, *, files: bool) -> tuple[CrashWorld, Path]:
    """A world whose production model is a copy of `crash_model` (the session's stays whole)."""
    world = CrashWorld(tmp_path / "world", url)
    crash_copy_nights(world, crash_examples, 1, 0, datetime_of(crash_examples))
    world.write_config(crash_examples / "raw" / "digits")
    folder = tmp_path / "models" / Path(crash_model["path"]).name
    shutil.copytree(crash_model["path"], folder)
    world.register({**crash_model, "path": str(folder), "files": crash_model["files"] if files else None})
    return world, folder


def datetime_of(examples: Path):
    import datetime

    return datetime.date.fromisoformat(sorted(path.name for path in (examples / "incoming").iterdir())[0])


def nightly(world: CrashWorld, night: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [OVERNIGHT, "nightly", night], cwd=world.repo, env=world.env(), capture_output=True, text=True, timeout=300
    )


def test_registration_records_the_hash_of_every_file_scoring_reads(crash_model):
    folder = Path(crash_model["path"])
    assert set(crash_model["files"]) == {"model.keras", "preprocessor.json", "reference.json"}
    sealed = json.loads((folder / INTEGRITY).read_text())["files"]
    assert all(crash_model["files"][name] == sealed[name]["sha256"] for name in crash_model["files"])
    assert crash_model["files"]["model.keras"] == crash_model["sha256"]


@pytest.mark.parametrize("files", [True, False], ids=["hashed files", "registered before 0013"])
def test_a_damaged_preprocessor_without_its_seal_is_refused_in_one_line(
    files, database_url, crash_model, crash_examples, tmp_path
):
    world, folder = world_with_a_copied_model(tmp_path, database_url, crash_model, crash_examples, files=files)
    preprocessor = folder / "preprocessor.json"
    swap_three_and_eight(preprocessor)
    (folder / INTEGRITY).unlink()
    damaged = preprocessor.read_bytes()

    result = nightly(world, world.nights[0])

    output = result.stdout + result.stderr
    assert result.returncode == 30, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    reason = "is not the registered file" if files else "cannot be verified"
    assert "FAILED (exit 30)" in result.stderr
    log = (world.data / "logs" / f"nightly-{world.nights[0]}.log").read_text()
    [line] = [text for text in log.splitlines() if "failed" in text and "BatchPredict(" in text]
    assert f"{preprocessor} {reason}" in line, line
    assert not (folder / INTEGRITY).exists()  # no seal written over the unverified file
    assert preprocessor.read_bytes() == damaged
    assert world.rows("SELECT COUNT(*) AS n FROM predictions")[0]["n"] == 0  # nothing scored with it
    database.dispose_all()


def test_a_lost_seal_over_registered_files_is_rebuilt_from_the_registry(
    database_url, crash_model, crash_examples, tmp_path
):
    world, folder = world_with_a_copied_model(tmp_path, database_url, crash_model, crash_examples, files=True)
    (folder / INTEGRITY).unlink()

    result = world.luigi("BatchPredict", "--date", world.nights[0])  # the night's scoring, where the seal is read

    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    sealed = json.loads((folder / INTEGRITY).read_text())["files"]
    assert {name: entry["sha256"] for name, entry in sealed.items()} == crash_model["files"]
    assert registry.production(database.connect(database_url))["files"] == crash_model["files"]
    database.dispose_all()
