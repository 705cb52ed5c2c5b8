"""Engines, URL hygiene and failure messages of pipeline.store.database."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.common.secrets import redact_secrets
from pipeline.store import database

REPO_ROOT = Path(__file__).resolve().parents[2]

UNREACHABLE = {
    # Port 1: nothing listens there, so the connection is refused at once.
    "postgresql": "postgresql+psycopg2://postgres:secret@127.0.0.1:1/test",
    # The parent "directory" is a file: the database cannot be created.
    "sqlite": "sqlite:///{tmp}/a-file/overnight.db",
}


def test_connect_caches_one_engine_per_url(database_url):
    assert database.connect(database_url) is database.connect(database_url)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_postgresql_url_without_a_driver_uses_the_installed_psycopg2(database_url):
    plain = database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    assert plain != database_url
    engine = database.connect(plain)
    assert engine.dialect.driver == "psycopg2"
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 0


def test_foreign_keys_cascade_on_both_backends(engine):
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO runs (run_id, task, status, started_at) VALUES (:run_id, 'T', 'running', :started_at)"
            ),
            {"run_id": "r1", "started_at": "2025-01-01 00:00:00+00:00"},
        )
        connection.execute(
            sa.text("INSERT INTO run_metrics (run_id, split, name, value) VALUES ('r1', 'test', 'm', 1)")
        )
        connection.execute(sa.text("DELETE FROM runs WHERE run_id = 'r1'"))
        remaining = connection.execute(sa.text("SELECT count(*) FROM run_metrics")).scalar_one()
    assert remaining == 0


def test_metric_without_run_is_rejected_on_both_backends(engine):
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO run_metrics (run_id, split, name) VALUES ('nope', 'test', 'm')"))


def test_sqlite_file_is_created_private_with_its_directory(tmp_path):
    path = tmp_path / "new" / "dir" / "overnight.db"

    database.connect(f"sqlite:///{path}")

    try:
        assert path.is_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        database.dispose_all()


def test_existing_sqlite_file_keeps_its_mode(tmp_path):
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)

    database.connect(f"sqlite:///{path}")

    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        database.dispose_all()


def test_mask_url_hides_the_password():
    masked = database.mask_url("postgresql+psycopg2://overnight:s3cr%40t@db.example:5432/prod")

    assert masked == "postgresql+psycopg2://overnight:***@db.example:5432/prod"
    assert database.mask_url("sqlite:///data/overnight.db") == "sqlite:///data/overnight.db"


def test_redact_secrets_masks_urls_and_keywords():
    text = (
        'could not connect to postgresql://me:hunter2@db/x; retry with "dbname=x password=hunter2" '
        "or http://user:p@ss@host/path"
    )

    redacted = redact_secrets(text)

    assert "hunter2" not in redacted
    assert "p@ss" not in redacted
    assert "postgresql://me:***@db/x" in redacted
    assert "http://user:***@host/path" in redacted


@pytest.mark.parametrize("backend", sorted(UNREACHABLE))
def test_unreachable_database_raises_one_line_without_password(backend, tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    url = UNREACHABLE[backend].format(tmp=tmp_path)

    try:
        for _ in range(2):  # a failed connect must not be cached as a success
            with pytest.raises(database.DatabaseUnavailable) as caught:
                database.connect(url)
            message = str(caught.value)
            assert "\n" not in message
            assert "secret" not in message
            assert database.mask_url(url) in message
    finally:
        database.dispose_all()
    if backend == "postgresql":
        assert "127.0.0.1:1" in message and "***" in message


def test_database_unavailable_is_a_runtime_error():
    assert issubclass(database.DatabaseUnavailable, RuntimeError)


def test_library_imports_neither_luigi_nor_tensorflow():
    code = (
        "import pipeline.store.ledger, pipeline.store.database, sys; "
        "assert 'luigi' not in sys.modules and 'tensorflow' not in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith(('luigi', 'tensorflow')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
