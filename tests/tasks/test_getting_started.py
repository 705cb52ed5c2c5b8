"""The first own-data example, as a newcomer copies it from docs/getting-started.md (and the README,
which prints the same commands): the shell blocks run verbatim with bash in a fresh folder laid
out like the repository root, then the SQL block answers from the database they made."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.markdown import REPO_ROOT, code_blocks, section

pytestmark = pytest.mark.slow
PAGE = REPO_ROOT / "docs" / "getting-started.md"
HEADING = "## Your own data, from CSV to a nightly job"


def example(path: Path, heading: str) -> tuple[list[str], list[str]]:
    text = section(path, heading)
    return code_blocks(text, "sh"), code_blocks(text, "sql")


def test_the_readme_prints_the_getting_started_example_unchanged():
    assert example(REPO_ROOT / "README.md", "## Your own data") == example(PAGE, HEADING)


def test_the_own_data_example_runs_as_printed_from_csv_to_a_logged_night(tmp_path):
    shell, queries = example(PAGE, HEADING)
    assert len(shell) == 3 and len(queries) == 1
    # The repository root as the reader has it: its settings, and the environment `make` built.
    for name in ("luigi.cfg", "logging.ini"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2", "CI": "true"}

    # One shell, as a reader's terminal keeps `export`s from one block to the next.
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(shell)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "headline:" in done.stdout and "baseline: linear" in done.stdout

    with sqlite3.connect(tmp_path / "wine" / "overnight.db") as connection:
        answer = connection.execute(queries[0]).fetchall()
    assert answer == [("2026-12-01", answer[0][1], 28, 0, 28, "loaded")]
