"""Database faults: unreachable at start, wrong credentials, a restart in the middle of a load.

Each fault is tried the way it happens: the `luigi` and `overnight` commands as subprocesses in
the repo root, and `prediction_log.load_batch` against a PostgreSQL server that is restarted (or
whose backend is killed) while the load's transaction is open. The promises: one clear line and a
non-zero exit, never a traceback flood and never the password; a load cut off by the server
rolls back whole (the previous load stays), the next load stores every row exactly once, and the
same engine works again without anyone disposing of it.

The PostgreSQL cases follow tests/conftest.py: skipped without a server, failures under CI=true.
The restart test creates a PostgreSQL cluster of its own (pg_createcluster, as root or postgres) and
restarts that: restarting the shared test server would drop the sessions of the tests beside it.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.store import database, ledger, prediction_log
from tests.conftest import _postgres_missing, _postgres_schema_url, postgres_base_url

REPO_ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).with_name("luigi"))
OVERNIGHT = str(Path(sys.executable).with_name("overnight"))
PASSWORD = "dbfault-S3cret-pw"  # must never be printed
COMMANDS = {
    "luigi SplitData": [LUIGI, "--module", "tasks", "SplitData"],
    "overnight runs": [OVERNIGHT, "runs"],
    "overnight db upgrade": [OVERNIGHT, "db", "upgrade"],
}
NIGHT = datetime.date(2031, 7, 1)
MODEL = "dbfault-model"


# --- the commands as a person runs them --------------------------------------------------------


def dbfault_world(tmp_path: Path) -> Path:
    """A tiny CSV data set and a config file naming it; returns the config file."""
    data = tmp_path / "tiny.csv"
    data.write_text(
        "size,colour,label\n" + "".join(f"{i},{'red' if i % 2 else 'blue'},{'ab'[i % 2]}\n" for i in range(20))
    )
    config = tmp_path / "dbfault.cfg"
    # Luigi's pid lock is keyed on the command line: a folder per test keeps the same command
    # run by a neighbouring test (another backend, another xdist worker) from looking like this one.
    config.write_text(
        f"[core]\nlock_pid_dir = {tmp_path / 'luigi-pids'}\n\n"
        f"[overnight]\ndata_root = {tmp_path / 'data'}\n\n[dataset]\npath = {data}\nlabel = label\n"
    )
    return config


def dbfault_run(command: list[str], config: Path, url: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OVERNIGHT_")}
    env.update(LUIGI_CONFIG_PATH=str(config), OVERNIGHT_DATABASE_URL=url, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def dbfault_files_mentioning(root: Path, secret: str) -> list[Path]:
    """Every file under root whose bytes contain secret."""
    needle = secret.encode()
    return [path for path in sorted(root.rglob("*")) if path.is_file() and needle in path.read_bytes()]


def assert_one_clear_line(
    result: subprocess.CompletedProcess, *, expected: str, tmp_path: Path, masked: bool = True
) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    mentions = [line for line in output.splitlines() if "is unavailable" in line]
    # Luigi: a warning when the first completeness check finds no database, then the failure.
    assert 1 <= len(mentions) <= 2, output[-3000:]
    assert all(expected in line for line in mentions), mentions
    assert PASSWORD not in output
    if masked:  # the URL is shown, its password masked
        assert all("***" in line for line in mentions), mentions
    assert dbfault_files_mentioning(tmp_path, PASSWORD) == []


UNREACHABLE = {
    # Port 1: nothing listens there; the connection is refused at once.
    "postgresql": (f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1:1/test", "Connection refused"),
    # The database's folder would have to be inside a file: SQLite cannot create it.
    "sqlite": ("sqlite:///{tmp}/a-file/overnight.db", "is unavailable"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("backend", sorted(UNREACHABLE))
def test_unreachable_database_at_start_is_one_line_and_non_zero(backend, command, tmp_path):
    config = dbfault_world(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    url, expected = UNREACHABLE[backend]
    url = url.format(tmp=tmp_path)

    result = dbfault_run(COMMANDS[command], config, url)

    assert_one_clear_line(result, expected=expected, tmp_path=tmp_path, masked=backend == "postgresql")


@pytest.fixture
def dbfault_postgres_base() -> sa.URL:
    """The test server's URL, after checking that it answers (skip, or fail under CI=true)."""
    base = sa.engine.make_url(postgres_base_url())
    engine = sa.create_engine(base, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        _postgres_missing(f"PostgreSQL at {database.mask_url(str(base))} unreachable: {error.orig}")
    finally:
        engine.dispose()
    return base


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_wrong_credentials_are_one_clear_line_without_the_password(command, dbfault_postgres_base, tmp_path):
    # The test server trusts 127.0.0.1 (pg_hba `trust`), so a wrong password for a real role would
    # be accepted; a role that does not exist is refused under every authentication method.
    role = f"dbfault_nobody_{uuid.uuid4().hex[:8]}"
    url = dbfault_postgres_base.set(username=role, password=PASSWORD).render_as_string(hide_password=False)
    config = dbfault_world(tmp_path)

    result = dbfault_run(COMMANDS[command], config, url)

    # trust/peer say the role does not exist; password methods say the password failed.
    refused = (f'role "{role}" does not exist', f'password authentication failed for user "{role}"')
    output = result.stdout + result.stderr
    assert any(reason in output for reason in refused), output[-3000:]
    assert_one_clear_line(result, expected=role, tmp_path=tmp_path)


# --- a server restart in the middle of a load ----------------------------------------------------


@pytest.fixture
def dbfault_postgres_url() -> Iterator[str]:
    """A fresh schema on the test server, its sessions named so that a test can find them."""
    for url in _postgres_schema_url():
        application = f"dbfault-{uuid.uuid4().hex[:12]}"
        yield (
            sa.engine.make_url(url)
            .update_query_dict({"application_name": application})
            .render_as_string(hide_password=False)
        )


def dbfault_chunk(start: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "example_id": [f"x{number:07d}" for number in range(start, start + rows)],
            "prediction": "a",
            "score": 0.5,
            "probabilities": '{"a": 0.5, "b": 0.5}',
        }
    )


def dbfault_counts(engine: sa.Engine) -> tuple[int, int, list[tuple]]:
    """(prediction rows, distinct example ids, batches rows) of the test night."""
    with engine.connect() as connection:
        rows, ids = connection.execute(
            sa.text(
                "SELECT COUNT(*), COUNT(DISTINCT example_id) FROM predictions "
                "WHERE batch_date = :night AND model_version = :model"
            ),
            {"night": NIGHT, "model": MODEL},
        ).one()
        batch = connection.execute(
            sa.text(
                "SELECT rows_in, rows_scored, status FROM batches WHERE batch_date = :night AND model_version = :model"
            ),
            {"night": NIGHT, "model": MODEL},
        ).all()
    return rows, ids, [tuple(row) for row in batch]


def dbfault_load(engine: sa.Engine, chunks, rows_in: int) -> int:
    return prediction_log.load_batch(
        engine, batch_date=NIGHT, model_version=MODEL, predictions=chunks, rows_in=rows_in, rows_rejected=0
    )


@pytest.fixture
def dbfault_private_cluster() -> Iterator[tuple[str, str, sa.URL]]:
    """A throwaway PostgreSQL cluster of this test's own (pg_createcluster, about 3 s): restarting
    it drops no session of the tests running beside this one on the shared server.
    Yields (version, name, url of its `postgres` database)."""
    versions = (
        sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres")) if Path("/usr/lib/postgresql").is_dir() else []
    )
    if shutil.which("pg_createcluster") is None or not versions:
        _postgres_missing("cannot create a PostgreSQL cluster to restart (no pg_createcluster)")
    version, name = versions[-1].parts[-3], f"dbfault{uuid.uuid4().hex[:8]}"
    with socket.socket() as probe:  # a free port; the cluster binds it a moment later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    created = subprocess.run(
        ["pg_createcluster", version, name, "-p", str(port), "--start", "--", "--auth=trust"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if created.returncode != 0:
        _postgres_missing(f"cannot create a PostgreSQL cluster to restart: {created.stderr.strip()[-300:]}")
    try:
        yield version, name, sa.engine.make_url(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres")
    finally:
        database.dispose_all()
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True, timeout=120)


def dbfault_wait_until_ready(url: sa.URL, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    command = ["pg_isready", "-q", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-t", "2"]
    while time.monotonic() < deadline:
        if shutil.which("pg_isready") is None:  # fall back to connecting
            try:
                sa.create_engine(url, poolclass=sa.pool.NullPool).connect().close()
                return
            except sa.exc.OperationalError:
                pass
        elif subprocess.run(command, timeout=30).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"PostgreSQL at {database.mask_url(str(url))} is not back after {timeout} s")


def assert_load_cut_off(error: BaseException, url: str) -> None:
    message = str(error)
    assert isinstance(error, database.DatabaseUnavailable), repr(error)
    assert "\n" not in message
    assert "connection was lost" in message and "rolled back" in message, message
    assert database.mask_url(url) in message


@pytest.mark.slow
def test_restart_mid_load_rolls_back_and_the_rerun_loads_exactly_once(dbfault_private_cluster):
    version, name, base = dbfault_private_cluster
    url = base.render_as_string(hide_password=False)
    engine = database.connect(url)
    assert dbfault_load(engine, [dbfault_chunk(0, 1_000)], 1_000) == 1_000  # yesterday's load, intact after
    with engine.connect() as first, engine.connect() as second:  # two idle pooled connections
        first.execute(sa.text("SELECT 1")), second.execute(sa.text("SELECT 1"))
    assert engine.pool.checkedin() == 2
    restarted = []

    def chunks_with_a_restart():
        yield dbfault_chunk(0, 20_000)  # COPYed into the open transaction
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        restarted.append(time.monotonic())
        yield dbfault_chunk(20_000, 20_000)  # its COPY meets the dead connection

    try:
        with pytest.raises(database.DatabaseUnavailable) as caught:
            dbfault_load(engine, chunks_with_a_restart(), 40_000)
    finally:
        dbfault_wait_until_ready(base)  # whatever happened, the checks below need the server back

    assert restarted, "the load failed before the restart"
    assert_load_cut_off(caught.value, url)
    # The same cached engine, not disposed by anyone: the pool pings and replaces dead connections
    # (the load's own was discarded; the idle one died with the restart).
    assert database.connect(url) is engine
    with engine.connect() as first, engine.connect() as second:
        assert first.execute(sa.text("SELECT 1")).scalar() == second.execute(sa.text("SELECT 1")).scalar() == 1
    assert dbfault_counts(engine) == (1_000, 1_000, [(1_000, 1_000, "loaded")])  # rolled back whole

    assert dbfault_load(engine, [dbfault_chunk(0, 20_000), dbfault_chunk(20_000, 20_000)], 40_000) == 40_000
    assert dbfault_counts(engine) == (40_000, 40_000, [(40_000, 40_000, "loaded")])
    # And the run ledger works on the same engine too.
    run_id = ledger.start_run(
        engine, task="DbFault", params={}, version="v", data_version=None, output_path="-", repo_dir=REPO_ROOT
    )
    ledger.finish_run(engine, run_id, status="succeeded")


def test_backend_killed_during_copy_rolls_back_and_the_rerun_loads_exactly_once(dbfault_postgres_url):
    url = sa.engine.make_url(dbfault_postgres_url)
    application = url.query["application_name"]
    admin = sa.create_engine(sa.engine.make_url(postgres_base_url()), poolclass=sa.pool.NullPool)
    engine = database.connect(dbfault_postgres_url)
    dbfault_load(engine, [dbfault_chunk(0, 1_000)], 1_000)
    killed: list[int] = []
    done, armed = threading.Event(), threading.Event()

    def chunks():
        for number, start in enumerate(range(0, 300_000, 50_000)):
            if number == 1:
                armed.set()  # the first chunk is COPYed into the open transaction: kill from now on
            yield dbfault_chunk(start, 50_000)

    def kill_while_copying() -> None:
        # pg_stat_activity is a per-transaction snapshot: one short transaction per look.
        look = sa.text(
            "SELECT pid FROM pg_stat_activity WHERE application_name = :application "
            "AND state = 'active' AND query LIKE 'COPY%'"
        )
        armed.wait(timeout=60)
        with admin.connect() as connection:
            while not done.is_set() and not killed:
                pids = connection.execute(look, {"application": application}).scalars().all()
                connection.commit()
                for pid in pids:
                    if connection.execute(sa.select(sa.func.pg_terminate_backend(pid))).scalar():
                        killed.append(pid)
                connection.commit()
                time.sleep(0.001)

    watcher = threading.Thread(target=kill_while_copying, daemon=True)
    watcher.start()
    try:
        with pytest.raises(database.DatabaseUnavailable) as caught:
            # Six COPY statements of 50,000 rows: the watcher kills the second, or a later one.
            dbfault_load(engine, chunks(), 300_000)
    finally:
        done.set()
        watcher.join(timeout=30)
        admin.dispose()

    assert killed, "no COPY was seen running"
    assert_load_cut_off(caught.value, dbfault_postgres_url)
    assert dbfault_counts(engine) == (1_000, 1_000, [(1_000, 1_000, "loaded")])
    assert dbfault_load(engine, [dbfault_chunk(0, 150_000), dbfault_chunk(150_000, 150_000)], 300_000) == 300_000
    assert dbfault_counts(engine) == (300_000, 300_000, [(300_000, 300_000, "loaded")])


def test_a_failed_load_that_is_not_a_lost_connection_keeps_its_own_error(database_url):
    # The lost-connection translation must not swallow ordinary errors: a repeated id is an
    # IntegrityError, rolled back as before.
    engine = database.connect(database_url)
    dbfault_load(engine, [dbfault_chunk(0, 10)], 10)
    with pytest.raises(sa.exc.IntegrityError):
        dbfault_load(engine, [dbfault_chunk(0, 10), dbfault_chunk(5, 10)], 20)
    assert dbfault_counts(engine) == (10, 10, [(10, 10, "loaded")])
