"""What the tool prints for a person and the files it creates, against a hostile supplier and a
careless operator (issue 19, items 7 and 9; cases in corpus.py).

- Control characters in values (ESC sequences, C1, DEL, bidi overrides) are escaped in everything
  `overnight` prints: the labeling queue on standard output, `models`, `runs`, `show`, errors.
  JSON stays valid and gives the values back; the `--output` CSV keeps them verbatim.
- `labeling-queue --output` writes 0600 under `[overnight] private`, refuses an existing file
  without `--force`, never writes through a symbolic link, creates missing folders (0700) or says
  in one line why not; `--limit` below 1 is a usage error.
- `scripts/nightly.sh` in a data root others can enter makes its logs and lock folders 0700 and
  their files 0600.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from luigi.configuration.cfg_parser import LuigiConfigParser
from luigi.task_register import Register

from pipeline.common.files import open_for_append, write_file
from pipeline.common.formatting import printable, printable_json
from pipeline.rendering.text import format_table
from pipeline.store import database, ledger, prediction_log, registry
from tests.reliability.corpus import BAD_LIMITS, EXISTING_TEXT, OUTPUT_CASES, TERMINAL_IDS, OutputCase

REPO_ROOT = Path(__file__).resolve().parents[2]
NIGHT = datetime.date(2026, 11, 3)
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # \n is layout
HOSTILE = [(name, raw, shown) for name, raw, shown in TERMINAL_IDS if raw != shown]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _overnight(*arguments: str):
    from tasks.cli import main

    return CliRunner().invoke(main, list(arguments), catch_exceptions=False)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """settings(**overnight_options): a Luigi config file in force, data root and label set."""

    def apply(**options: str) -> Path:
        path = tmp_path / "hostile.cfg"
        overnight = {"data_root": str(tmp_path / "data"), **options}
        path.write_text(
            "[overnight]\n"
            + "".join(f"{key} = {value}\n" for key, value in overnight.items())
            + "\n[dataset]\nlabel = label\n"
        )
        monkeypatch.setattr(LuigiConfigParser, "_instance", None)
        monkeypatch.setattr(LuigiConfigParser, "_config_paths", [str(path)])
        Register.clear_instance_cache()
        return path

    apply()
    yield apply
    Register.clear_instance_cache()


@pytest.fixture
def queue(engine, database_url, settings, monkeypatch):
    """A night scored with every hostile id of the corpus, on SQLite and PostgreSQL."""
    monkeypatch.setenv("OVERNIGHT_DATABASE_URL", database_url)
    ids = [raw for _name, raw, _shown in TERMINAL_IDS]
    frame = pd.DataFrame(
        {
            "example_id": ids,
            "prediction": ["cat"] * len(ids),
            "score": [0.5 + index / 100 for index in range(len(ids))],
            "probabilities": [json.dumps({"cat": 0.5})] * len(ids),
        }
    )
    prediction_log.load_batch(
        engine, batch_date=NIGHT, model_version="m1", predictions=frame, rows_in=len(ids), rows_rejected=0
    )
    yield engine
    database.dispose_all()


# --- item 9: control characters in printed values ------------------------------------------------


@pytest.mark.parametrize(("name", "raw", "shown"), TERMINAL_IDS, ids=[case[0] for case in TERMINAL_IDS])
def test_printable_escapes_controls_as_repr_does_and_keeps_letters(name, raw, shown):
    assert printable(raw) == shown
    assert not RAW_CONTROL.search(printable(raw)) and "\n" not in printable(raw)
    assert printable(raw, keep_newlines=True) == shown.replace("\\n", "\n")
    assert json.loads(printable_json(json.dumps(raw, ensure_ascii=False))) == raw  # still valid JSON


def test_table_cells_are_escaped_one_line_per_row():
    text = format_table(("id", "n"), [(raw, 1) for _name, raw, _shown in TERMINAL_IDS])
    assert not RAW_CONTROL.search(text)
    assert len(text.splitlines()) == len(TERMINAL_IDS) + 1
    for _name, _raw, shown in TERMINAL_IDS:
        assert shown in text


def test_labeling_queue_escapes_ids_on_standard_output_and_exports_them_verbatim(queue, tmp_path):
    shown = _overnight("labeling-queue", "--date", str(NIGHT))
    assert shown.exit_code == 0, shown.output
    assert not RAW_CONTROL.search(shown.output), ascii(shown.output)
    assert len(shown.output.splitlines()) == len(TERMINAL_IDS) + 1  # a header, then a line per id
    for _name, _raw, escaped in TERMINAL_IDS:
        assert escaped in shown.output

    target = tmp_path / "to-label.csv"
    exported = _overnight("labeling-queue", "--date", str(NIGHT), "--output", str(target))
    assert exported.exit_code == 0, exported.output
    assert not RAW_CONTROL.search(exported.output)
    table = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert sorted(table["example_id"]) == sorted(raw for _name, raw, _shown in TERMINAL_IDS)  # verbatim
    assert list(table.columns) == ["batch_date", "example_id", "model_version", "prediction", "score", "label"]


def test_models_runs_show_and_errors_escape_values(engine, database_url, settings, monkeypatch, tmp_path):
    monkeypatch.setenv("OVERNIGHT_DATABASE_URL", database_url)
    hostile = "v\x1b[31m\u202e1"
    registry.register(
        engine,
        version=hostile,
        run_id=None,
        path=f"/models/{hostile}",
        sha256="0" * 64,
        task="classification",
        data_version="d\x9b2J",
        evaluation_path=None,
        headline=None,
        metrics=None,
        actor="mallory\x07",
    )
    run = ledger.start_run(
        engine,
        task="TrainModel",
        params={"path": "/data/\x1b]0;owned\x07x.csv"},
        version="f" * 16,
        data_version="d" * 64,
        output_path=tmp_path / "out\x1b[2J",
        repo_dir=REPO_ROOT,
    )
    ledger.finish_run(engine, run, status="failed", error="bad id 'r\x1b[31m' in\tline 3")
    printed = {
        "models": _overnight("models"),
        "models csv": _overnight("models", "--format", "csv"),
        "runs": _overnight("runs"),
        "runs csv": _overnight("runs", "--format", "csv"),
        "show": _overnight("show", run[:8]),
        "unknown run": _overnight("show", "zz\x1b[31m"),
    }
    for command, result in printed.items():
        assert not RAW_CONTROL.search(result.output), (command, ascii(result.output))
    assert "v\\x1b[31m\\u202e1" in printed["models"].output and "d\\x9b2J" in printed["models csv"].output
    assert "\\x1b]0;owned\\x07" in printed["show"].output and "r\\x1b[31m" in printed["show"].output
    assert printed["unknown run"].exit_code == 1 and "zz\\x1b[31m" in printed["unknown run"].output

    for command in (
        ("models", "--format", "json"),
        ("runs", "--format", "json"),
        ("show", run[:8], "--format", "json"),
    ):
        result = _overnight(*command)
        assert not RAW_CONTROL.search(result.output), (command, ascii(result.output))
        json.loads(result.output)  # valid, the values given back as stored
    assert json.loads(_overnight("models", "--format", "json").output)[0]["version"] == hostile


def test_every_cli_print_goes_through_the_escaping_echo():
    for path in sorted((REPO_ROOT / "tasks" / "cli").glob("*.py")):
        if path.name == "app.py":
            continue
        source = path.read_text()
        assert "click.echo(" not in source and "print(" not in source, f"{path.name}: print through tasks.cli.app.echo"


# --- item 7: files created, overwritten, followed ------------------------------------------------


def _scene(folder: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under folder: kind, mode and content (a link's target, a file's text)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = ("link", 0, os.readlink(path))
        elif path.is_file():
            found[str(path)] = ("file", _mode(path), path.read_text())
        else:
            found[str(path)] = ("folder", _mode(path), "")
    return found


@pytest.mark.parametrize("case", OUTPUT_CASES, ids=[case.name for case in OUTPUT_CASES])
def test_labeling_queue_output_targets(case: OutputCase, queue, tmp_path):
    folder = tmp_path / "scene"
    folder.mkdir()
    target = case.arrange(folder)
    before = _scene(folder)
    previous = os.umask(0o022)
    try:
        result = _overnight(
            "labeling-queue", "--date", str(NIGHT), "--output", str(target), *(["--force"] if case.force else [])
        )
    finally:
        os.umask(previous)

    if not case.written:
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and re.search(case.error, lines[0]), result.output
        assert _scene(folder) == before  # nothing written, nothing followed, no temporary left
        return
    assert result.exit_code == 0, result.output
    assert _mode(target) == 0o600 and target.is_file() and not target.is_symlink()
    assert EXISTING_TEXT not in target.read_text() and "example_id" in target.read_text()
    made = [parent for parent in target.parents if folder in parent.parents]  # folders it had to create
    assert all(_mode(parent) == 0o700 for parent in made)
    after = _scene(folder)
    assert set(after) == set(before) | {str(target)} | {str(parent) for parent in made}  # no temporary left
    assert all(after[path] == entry for path, entry in before.items() if path != str(target))


def test_labeling_queue_output_follows_the_umask_when_not_private(queue, settings, tmp_path):
    settings(private="false")
    target = tmp_path / "open" / "to-label.csv"
    previous = os.umask(0o022)
    try:
        result = _overnight("labeling-queue", "--date", str(NIGHT), "--output", str(target))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert (_mode(target), _mode(target.parent)) == (0o644, 0o755)


@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_labeling_queue_refuses_a_limit_below_one(limit, settings, monkeypatch, tmp_path):
    monkeypatch.setenv("OVERNIGHT_DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    result = _overnight("labeling-queue", "--date", str(NIGHT), "--limit", limit)
    assert result.exit_code == 2 and "--limit" in result.output, result.output
    assert not (tmp_path / "never.db").exists()  # refused before any query


def test_write_file_is_owner_only_whatever_the_umask_and_never_clobbers(tmp_path):
    previous = os.umask(0o277)  # would take the owner's own write bit
    try:
        written = write_file(tmp_path / "a" / "export.csv", b"one\n", private=True)
    finally:
        os.umask(previous)
    assert (_mode(written), _mode(written.parent), written.read_bytes()) == (0o600, 0o700, b"one\n")
    with pytest.raises(FileExistsError):
        write_file(written, b"two\n", private=True)
    assert written.read_bytes() == b"one\n"
    write_file(written, b"two\n", private=True, replace=True)
    assert written.read_bytes() == b"two\n"
    assert sorted(path.name for path in written.parent.iterdir()) == ["export.csv"]  # no temporary left


def test_open_for_append_makes_new_files_owner_only_and_keeps_existing_modes(tmp_path):
    previous = os.umask(0o022)
    try:
        with open_for_append(tmp_path / "private.log", private=True) as handle:
            handle.write("one\n")
        with open_for_append(tmp_path / "open.log", private=False) as handle:
            handle.write("one\n")
        (tmp_path / "shared.log").write_text("kept\n")
        os.chmod(tmp_path / "shared.log", 0o640)
        with open_for_append(tmp_path / "shared.log", private=True) as handle:
            handle.write("two\n")
    finally:
        os.umask(previous)
    assert (_mode(tmp_path / "private.log"), _mode(tmp_path / "open.log")) == (0o600, 0o644)
    assert _mode(tmp_path / "shared.log") == 0o640 and (tmp_path / "shared.log").read_text() == "kept\ntwo\n"


def test_nightly_logs_and_locks_are_owner_only_in_a_data_root_others_can_enter(tmp_path):
    # An administrator made the data root 0755 (docs/nightly.md's cron set-up, data_root outside the
    # repository); the log holds data values all the same.
    root = tmp_path / "srv" / "data"
    root.mkdir(parents=True)
    os.chmod(root, 0o755)
    config = tmp_path / "night.cfg"
    config.write_text(f"[overnight]\ndata_root = {root}\n\n[dataset]\npath = {tmp_path / 'none'}\nlabel = label\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LUIGI_CONFIG_PATH": str(config),
        "OVERNIGHT_DATABASE_URL": f"sqlite:///{tmp_path / 'night.db'}",
    }
    script = REPO_ROOT / "scripts" / "nightly.sh"
    done = subprocess.run(
        ["sh", "-c", 'umask 022 && exec "$0" "$@"', str(script), str(NIGHT)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = root / "logs" / f"nightly-{NIGHT}.log"
    assert log.is_file() and f"nightly: {NIGHT} started" in log.read_text(), done.stderr
    assert _mode(root) == 0o755  # an existing folder keeps its mode
    assert (_mode(log.parent), _mode(log)) == (0o700, 0o600)
    locks = sorted((root / ".locks").glob("*.lock"))
    assert any(lock.name == f"nightly-{NIGHT}.lock" for lock in locks)
    assert _mode(root / ".locks") == 0o700
    assert {lock.name: _mode(lock) for lock in locks} == {lock.name: 0o600 for lock in locks}


@pytest.mark.parametrize(("private", "modes"), [(True, (0o700, 0o600)), (False, (0o755, 0o644))])
def test_output_locks_are_owner_only_unless_configured(private, modes, tmp_path):
    from tasks.base.outputs import output_lock

    root = tmp_path / "data"
    root.mkdir(mode=0o755)
    previous = os.umask(0o022)
    try:
        with output_lock(root / ".locks", str(root / "05_training" / "v1"), owner="test", private=private) as held:
            assert held
    finally:
        os.umask(previous)
    (lock,) = (root / ".locks").glob("*.lock")
    assert (_mode(root / ".locks"), _mode(lock)) == modes  # the lock names the output and its owner


def test_luigi_pid_lock_folder_is_owner_only(tmp_path):
    # `luigi --module tasks ...` without --no-lock: Luigi's pid file (pids only) lives in
    # [core] lock_pid_dir, which Luigi itself creates 0700.
    from luigi import lock

    previous = os.umask(0o022)
    try:
        assert lock.acquire_for(str(tmp_path / "luigi"))
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "luigi") == 0o700
