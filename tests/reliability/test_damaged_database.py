"""A damaged SQLite file, and exit codes that are all in docs/nightly.md's table.

A SQLite file overwritten at its start, or cut short, is not "unreachable": the driver opens it
and fails on the first read with "file is not a database" or "database disk image is malformed".
Every command says so in one line naming the file, and exits as docs/nightly.md's table says: 2 from
`overnight` (its commands and `overnight nightly`), 30 ("a task failed ... the database") from a
`luigi` command. PostgreSQL has no file to damage: its faults are test_db_faults.py's.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.store import database
from tests.reliability.test_db_faults import LUIGI, OVERNIGHT, dbfault_run, dbfault_world

COMMANDS = {
    "overnight runs": ([OVERNIGHT, "runs"], 2),
    "overnight models": ([OVERNIGHT, "models"], 2),
    "overnight nightly": ([OVERNIGHT, "nightly", "2031-07-02"], 2),
    "luigi SplitData": ([LUIGI, "--module", "tasks", "SplitData"], 30),
}


def overwrite_start(path: Path) -> str:
    with open(path, "r+b") as handle:
        handle.write(b"\xde\xad" * 50)  # the first 100 bytes: SQLite's header
    return "file is not a database"


def cut_in_half(path: Path) -> str:
    os.truncate(path, path.stat().st_size // 2)
    return "database disk image is malformed"


DAMAGE = {"overwritten": overwrite_start, "truncated": cut_in_half}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_sqlite_file_is_one_line_naming_it_and_the_readme_s_exit_code(damage, command, tmp_path):
    config = dbfault_world(tmp_path)
    path = tmp_path / "data" / "overnight.db"
    url = f"sqlite:///{path}"
    database.connect(url)  # a whole database at the newest schema, then damaged
    database.dispose_all()
    reason = DAMAGE[damage](path)
    arguments, code = COMMANDS[command]

    result = dbfault_run(arguments, config, url)

    output = result.stdout + result.stderr
    assert result.returncode == code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    line = f"{path} is damaged ({reason}): restore it from a backup"
    failures = [text for text in output.splitlines() if "is damaged" in text and "stale runs" not in text]
    assert failures and all(line in text for text in failures), output[-3000:]
    # One line per report of it: Luigi's failure line and, for `overnight nightly`, its own summary.
    assert len(failures) <= 2, failures


@pytest.mark.parametrize("luigi_code", [20, 25, 35, 40])
def test_overnight_nightly_exits_only_with_the_documented_codes(luigi_code, tmp_path, monkeypatch):
    # A FIFO in a night used to end the night with Luigi's scheduling error, 35, which the documented
    # table does not have: every Luigi code outside the table is a night that needs a person, 30.
    from tasks.cli import nightly
    from tasks.cli.app import main

    config = dbfault_world(tmp_path)
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(config))
    monkeypatch.setenv("OVERNIGHT_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'overnight.db'}")

    def luigi_ended(night: str, log: Path) -> tuple[int, list[dict]]:
        log.write_text(f"Will not run Nightly(date={night}) due to error in complete() method: a FIFO\n")
        return luigi_code, []

    monkeypatch.setattr(nightly, "_run_night", luigi_ended)

    result = CliRunner().invoke(main, ["nightly", "2031-07-03"])

    assert result.exit_code == 30, result.output
    assert "FAILED (exit 30): Will not run Nightly(date=2031-07-03) due to error in complete() method" in result.output
