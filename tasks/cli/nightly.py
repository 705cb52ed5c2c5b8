"""`overnight nightly [DATE]`: one night as cron runs it (scripts/nightly.sh is a thin wrapper).

One run per data set and date at a time (a lock under the data root), a log per data set and
night (`<data_root>/logs/nightly-DATE.log`), Luigi in a process of its own, and one line that
names the cause when something needs a human. Under `[overnight] private` (the default) the
folders of logs and locks are made 0700 and their files 0600, also in a data root others can
enter: the log holds data values. Exit codes (docs/nightly.md, "The cron entry and its exit codes"):

    0   the night is scored, logged and clean           10  the night is already running
    30  drift, too many rejected rows, or a failed task 31  a file was quarantined (partial night)
    32  the night's folder did not exist (missing)      2   a bad date, no environment, or the
                                                            database cannot be used
Luigi's other exit codes (luigi.cfg [retcode]: 20 missing data, 25 not run, 35 a scheduling
error, 40 an unhandled exception) are reported as 30 with the line that says why.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path

import click

from pipeline.common import disk
from pipeline.common.files import ensure_dir, open_for_append
from tasks.base.startup import OUTCOME_VARIABLE
from tasks.cli.app import echo, main
from tasks.config import layout, overnight

ALREADY_RUNNING = 10  # luigi.cfg [retcode] already_running
TASK_FAILED = 30  # luigi.cfg [retcode] task_failed
# The codes of docs/nightly.md's table; any other Luigi exit code is a failure that needs a person: 30.
DOCUMENTED = (0, 2, ALREADY_RUNNING, TASK_FAILED, 31, 32)
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@main.command("nightly")
@click.argument("night", required=False)
def nightly(night: str | None) -> None:
    """Score, log and monitor one night, as cron does.

    NIGHT is YYYY-MM-DD, today by default. One run per data set and date at a time, its log in
    <data_root>/logs/nightly-NIGHT.log. Exits 0 clean (or an empty night), 2 when the
    configuration or the database cannot be used, 10 already running, 30 drift, too many
    rejected rows or a failed task, 31 a file quarantined (partial), 32 no incoming/NIGHT folder
    (missing)."""
    night = night or datetime.date.today().isoformat()
    if not DATE.fullmatch(night):
        raise click.UsageError(f"expected a date as YYYY-MM-DD, got {night!r}")
    root = layout().root.resolve()
    try:
        _night(night, root)
    except (OSError, disk.DiskFull) as error:
        if not disk.is_disk_full(error) and not isinstance(error, disk.DiskFull):
            raise
        # The lock, the log or its folder: no room to start. The log cannot hold this line.
        full = error if isinstance(error, disk.DiskFull) else disk.disk_full(error, root)
        echo(f"nightly: {night} FAILED (exit {TASK_FAILED}): {full}", err=True)
        sys.exit(TASK_FAILED)


def _night(night: str, root: Path) -> None:
    log = root / "logs" / f"nightly-{night}.log"
    ensure_dir(log.parent, private=overnight().private)
    with _night_lock(root / ".locks" / f"nightly-{night}.lock") as holder:
        if holder is not None:
            _say(log, f"nightly: {night} is already running{holder}; not starting twice", error=True)
            sys.exit(ALREADY_RUNNING)
        code, failures = _run_night(night, log)
    reason = failures[0]["error"] if failures else _reason_from_log(log)
    code = code if code in DOCUMENTED else TASK_FAILED
    code = next((f["exit_code"] for f in failures if f.get("exit_code")), code) if code == TASK_FAILED else code
    if code:
        where = f"{failures[0]['task']}: " if failures else ""
        _say(log, f"nightly: {night} FAILED (exit {code}): {where}{reason or f'see {log}'}", error=True)
        _say(log, f"nightly: log in {log}", error=True)
    else:
        _say(log, f"nightly: {night} done; log in {log}")
    sys.exit(code)


@contextmanager
def _night_lock(path: Path):
    """Yields None once this process holds the night's lock, else a note naming the holder.

    flock, not a pid file: the kernel drops the lock when its holder dies, even by SIGKILL, so a
    killed night never blocks the next start. Opened for appending: the loser must not wipe the
    holder's pid.
    """
    ensure_dir(path.parent, private=overnight().private)
    with open_for_append(path, private=overnight().private) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = "".join(character for character in handle.read(32) if character.isdigit())
            yield f" (pid {pid}, lock {path})" if pid else f" (lock {path})"
            return
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield None


def _run_night(night: str, log: Path) -> tuple[int, list[dict]]:
    """Luigi's Nightly in a process of its own, its output appended to the log; (exit code, failures)."""
    luigi_command = Path(sys.executable).with_name("luigi")
    with tempfile.NamedTemporaryFile("r", prefix="overnight-outcome-", suffix=".jsonl") as outcome:
        env = {**os.environ, OUTCOME_VARIABLE: outcome.name}
        _append(log, f"nightly: {night} started {datetime.datetime.now().astimezone().isoformat()}")
        with _open_log(log) as output:
            code = subprocess.call(
                [str(luigi_command), "--module", "tasks", "Nightly", "--date", night, "--no-lock"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )
        failures = [json.loads(line) for line in Path(outcome.name).read_text().splitlines() if line.strip()]
    _append_if_room(log, f"nightly: {night} ended {datetime.datetime.now().astimezone().isoformat()} with exit {code}")
    return code, failures


def _reason_from_log(log: Path) -> str:
    """The last failure Luigi logged (a scheduling error has no failed task to report)."""
    lines = log.read_text(errors="replace").splitlines()
    start = max((i for i, line in enumerate(lines) if " started " in line and line.startswith("nightly:")), default=0)
    found = [line for line in lines[start:] if re.search(r"Worker .* failed|Will not run|unavailable", line)]
    return re.sub(r"^.*failed +", "", found[-1]) if found else ""


def _say(log: Path, line: str, *, error: bool = False) -> None:
    echo(line, err=error)
    _append_if_room(log, line)


def _append_if_room(log: Path, line: str) -> None:
    """Append a line to the night's log, unless its disk is full (the line went to stderr)."""
    with suppress(disk.DiskFull):
        _append(log, line)


def _append(log: Path, line: str) -> None:
    try:
        with _open_log(log) as output:
            output.write(line + "\n")
    except OSError as error:
        raise (disk.disk_full(error, log) if disk.is_disk_full(error) else error) from error


def _open_log(log: Path):
    return open_for_append(log, private=overnight().private)
