"""Output leases in the database: exclusion between hosts whose flocks are not shared."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa

from pipeline.layout import TEMPORARY_MARK
from pipeline.store import leases, ledger
from pipeline.store.transactions import lock_key
from tasks.base.outputs import remove_abandoned_attempts

HOLD = """
import sys, time
from pipeline.store import database, leases
engine = database.connect(sys.argv[1])
with leases.output_lease(engine, sys.argv[2], owner="another host") as held:
    print("held", held is not None, flush=True)
    time.sleep(120)
"""


def holder(engine, location: str) -> subprocess.Popen:
    """Another process (as on another host) holding the output's lease until it is killed."""
    url = engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), url, location], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held True"
    return process


def test_a_lease_another_process_holds_is_refused_named_and_freed_when_it_dies(engine, tmp_path, caplog):
    if engine.dialect.name != "postgresql":
        with leases.output_lease(engine, str(tmp_path / "out"), owner="test") as held:
            assert held  # SQLite serves one host: the output lock's flock is the exclusion
        return
    location = str(tmp_path / "05_training" / "aaaaaaaaaaaaaaaa")
    run_id = ledger.start_run(
        engine, task="TrainModel", params={}, version="v", data_version=None, output_path=location, repo_dir=tmp_path
    )
    other = holder(engine, location)
    try:
        with leases.output_lease(engine, location, owner="test", wait=False) as held:
            assert not held
        with engine.connect() as connection:
            assert leases.holder(connection, location).startswith("pid ")  # the running run's host and pid
    finally:
        other.kill()
        other.wait()
    ledger.finish_run(engine, run_id, status="failed", error="killed")
    with leases.output_lease(engine, location, owner="test", wait=False) as held:
        assert held  # the session ended with the process: the lease with it


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite serves one host
def test_another_host_s_live_attempt_is_not_removed_whatever_the_local_locks_say(engine, tmp_path):
    stage = tmp_path / "05_training"
    live = stage / f"bbbbbbbbbbbbbbbb{TEMPORARY_MARK}123"  # another version's attempt, being written
    live.mkdir(parents=True)
    other = holder(engine, str(stage / "bbbbbbbbbbbbbbbb"))
    unshared = tmp_path / "this-host-locks"  # its flock is on a lock file this host cannot see
    try:
        remove_abandoned_attempts(stage / "aaaaaaaaaaaaaaaa", unshared, engine, owner="test")
        assert live.is_dir()
    finally:
        other.kill()
        other.wait()
    remove_abandoned_attempts(stage / "aaaaaaaaaaaaaaaa", unshared, engine, owner="test")
    assert not live.exists()  # abandoned now: removed


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_lease_whose_session_ended_says_so_before_the_output_is_put_in_place(engine, tmp_path):
    location = str(tmp_path / "05_training" / "cccccccccccccccc")
    with leases.output_lease(engine, location, owner="test") as lease:
        lease.check()  # held
        key = lock_key("output", location) & 0xFFFFFFFFFFFFFFFF  # pg_locks shows its two halves
        holding = (
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = :high AND objid::bigint = :low"
        )
        with engine.connect() as other:  # a server restart, as far as this session can tell
            (pid,) = other.execute(sa.text(holding), {"high": key >> 32, "low": key & 0xFFFFFFFF}).one()
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(leases.LeaseLost, match="the database session holding this output's lease ended"):
            lease.check()
    with leases.output_lease(engine, location, owner="test", wait=False) as again:
        assert again is not None  # nothing was left held, and leaving the block did not raise
