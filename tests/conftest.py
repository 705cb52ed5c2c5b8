"""Shared fixtures and the suite's time limit.

database_url: every test using it runs once per backend, on a fresh database.

SQLite gets a file in tmp_path. PostgreSQL gets a new schema in the database named by
OVERNIGHT_TEST_POSTGRES_URL, selected through the connection's search_path and dropped
afterwards. Without a reachable PostgreSQL those cases skip, except in CI (CI=true), where a
missing server is a failure: CI must never pass by skipping half the backends.

The time limit: a test whose setup, call and teardown together take longer than `test_time_limit`
seconds (pytest.ini) fails, so the next slow test is seen the day it lands, not when CI runs out
of time. Several workers share the two cores (pytest-xdist, `-n auto` in pytest.ini): every
fixture here is safe for them (a schema or folder per test, free ports, no fixed /tmp names).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.store import database

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
_SPENT = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("test_time_limit", "seconds one test may take, setup and teardown included (0: none)", default="0")
    parser.addoption(
        "--kills",
        choices=("core", "full"),
        default="core",
        help="the crash harness's plans: core (each kind of kill moment, the suite's) or full (the whole campaign)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Fail a test over the time limit, in its teardown report, naming its time and the limit."""
    report = yield
    spent = item.stash.get(_SPENT, 0.0) + call.duration
    item.stash[_SPENT] = spent
    limit = float(item.config.getini("test_time_limit"))
    if call.when == "teardown" and limit and spent > limit and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} took {spent:.1f} s (setup, call and teardown), over the {limit:g} s one test "
            "may take (pytest.ini test_time_limit): make it smaller, or share what it builds"
        )
    return report


def postgres_base_url() -> str:
    return os.environ.get("OVERNIGHT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _postgres_missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: PostgreSQL tests must run, not skip)")
    pytest.skip(message)


def _postgres_schema_url() -> Iterator[str]:
    base = sa.engine.make_url(postgres_base_url())
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    schema = f"t_{uuid.uuid4().hex}"
    try:
        with admin.begin() as connection:
            connection.execute(sa.schema.CreateSchema(schema))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = " ".join(str(exc.orig).split())
        _postgres_missing(f"PostgreSQL at {database.mask_url(postgres_base_url())} unreachable: {reason}")
    try:
        # psycopg2 passes `options` to libpq: this session sees only the new schema.
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        database.dispose_all()  # close pooled sessions before dropping what they used
        with admin.begin() as connection:
            connection.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database (nothing migrated yet), one per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'overnight.db'}"
        database.dispose_all()
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    """An engine on a migrated, empty database."""
    return database.connect(database_url)
