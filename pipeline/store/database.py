"""Database access for overnight: engines, migrations and URL hygiene.

One entry point, :func:`connect`, hands out a cached engine per URL and upgrades the schema to
the newest Alembic revision the first time a process touches that URL, so a fresh SQLite file
or an empty PostgreSQL database is usable at once. SQLite and PostgreSQL behave the same:
foreign keys are enforced on both, timestamps read back as aware UTC on both.

Passwords never leave this module in clear: log and error messages use :func:`mask_url`, and
free text bound for the database goes through :func:`redact_secrets`.

A database that cannot be reached, refuses the login or drops the connection (a server restart)
surfaces as :class:`DatabaseUnavailable`, one line without a password, from every engine made
here: the Luigi adapter prints it as one line instead of a traceback. The pool pings a connection
before handing it out, so the first statement after a restart gets a fresh connection; nothing
needs disposing.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from pipeline.common.files import ensure_private_dir
from pipeline.common.secrets import redact_secrets
from pipeline.store.migration_files import MIGRATIONS_DIR, head_revision

__all__ = [
    "DatabaseUnavailable",
    "alembic_config",
    "connect",
    "connect_for_reading",
    "upgrade_existing",
    "current_revision",
    "dispose_all",
    "head_revision",
    "mask_url",
    "upgrade",
]

logger = logging.getLogger(__name__)


# Long enough for a second process to wait out another's write transaction (metrics inserts
# are small), short enough that a stuck lock is reported within a minute.
SQLITE_BUSY_TIMEOUT_S = 30
# SQLite's primary result codes for a file that is not (or no longer) a whole database:
# SQLITE_CORRUPT ("database disk image is malformed") and SQLITE_NOTADB ("file is not a database").
_SQLITE_DAMAGED = (11, 26)
# A PostgreSQL server that does not answer should fail a run quickly, not hang it.
POSTGRES_CONNECT_TIMEOUT_S = 10
# Arbitrary constant ("overnight" in spirit) for pg_advisory_xact_lock around migrations.
_MIGRATION_LOCK_KEY = 0x6F76_6E69_6768_74

_lock = threading.RLock()
_engines: dict[str, sa.Engine] = {}
_upgraded: set[str] = set()


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or refused us; the message is one line, no password."""


def mask_url(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``; safe to log.

    Both forms libpq takes: ``user:password@`` (SQLAlchemy hides it) and ``?password=...`` in
    the query (SQLAlchemy prints it: the text masking takes it out).
    """
    try:
        return redact_secrets(sa.engine.make_url(url).render_as_string(hide_password=True))
    except sa_exc.ArgumentError:
        # Not a parseable URL: still never echo what might be a password.
        return redact_secrets(url)


def alembic_config(url: str | None = None, connection: sa.Connection | None = None):
    """An Alembic Config for overnight's migrations, built in code (no alembic.ini).

    Alembic loads here and where migrations run, not with this module: a complete night's
    check connects and reads a marker without it.

    Args:
        url: used by env.py when no connection is given (and for ``--sql`` offline mode).
        connection: an open connection env.py runs the migrations on, inside its transaction.
    """
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates "%"; URL-encoded query strings and paths may contain it.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def connect(url: str) -> sa.Engine:
    """The engine for ``url``, with the schema upgraded to head once per process.

    For a SQLite file, missing parent folders are created (mode 0o700), and the file too
    (mode 0o600) when it does not exist yet.

    Raises:
        DatabaseUnavailable: the server cannot be reached, refuses the login, or the SQLite
            file cannot be created or opened.
    """
    engine = _engine(url)
    with _lock:
        if url not in _upgraded:
            _migrate(url, engine, "head")
            _upgraded.add(url)
    return engine


def upgrade_existing(url: str) -> bool:
    """Migrate a database that already holds an older schema of this pipeline; True if it did.

    A database without the schema (a SQLite file not created yet, an empty PostgreSQL database)
    is left alone: the first task that records a run creates it.
    """
    if missing_sqlite_file(url) is not None:
        return False
    engine = _engine(url)
    with _open(url, engine) as connection:
        current = _stored_revision(connection)
    if current is None or current == head_revision():
        return False
    connect(url)
    return True


def connect_for_reading(url: str) -> sa.Engine | None:
    """The engine for ``url`` when its schema is at head already; None when it is not (a SQLite
    file not created yet, an empty or older database). Creates and migrates nothing: what a
    completeness check uses, since checking must never change the database.

    Raises:
        DatabaseUnavailable: the server cannot be reached or refuses the login.
    """
    if missing_sqlite_file(url) is not None:
        return None
    engine = _engine(url)
    with _lock:
        if url in _upgraded:
            return engine
    with _open(url, engine) as connection:
        current = _stored_revision(connection)
    if current != head_revision():
        return None
    with _lock:
        _upgraded.add(url)
    return engine


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the schema at ``url`` to ``revision``; a no-op when it is there already."""
    engine = _engine(url)
    with _lock:
        _migrate(url, engine, revision)
        if revision == "head":
            _upgraded.add(url)


def current_revision(url: str) -> str | None:
    """The Alembic revision the database at ``url`` is at; None for an unmigrated database."""
    engine = _engine(url)
    with _open(url, engine) as connection:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist yet (connecting would create it); else None."""
    parsed = sa.engine.make_url(url)
    path = _sqlite_file(parsed) if parsed.get_backend_name() == "sqlite" else None
    return None if path is None or path.exists() else path


def dispose_all() -> None:
    """Close every cached engine and forget which URLs were upgraded (tests, shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _upgraded.clear()


def _engine(url: str) -> sa.Engine:
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def _create_engine(url: str) -> sa.Engine:
    parsed = with_installed_driver(sa.engine.make_url(url))
    if parsed.get_backend_name() == "sqlite":
        engine = _create_sqlite_engine(url, parsed)
    else:
        # Pre-ping: a Luigi worker may sit idle for hours of training, and a server restart
        # kills every pooled connection; the ping swaps a dead one for a new one unseen.
        kwargs: dict = {"pool_pre_ping": True}
        libpq = parsed.get_driver_name() in ("psycopg2", "psycopg")
        if libpq and "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        engine = sa.create_engine(parsed, **kwargs)
    sa.event.listen(engine, "handle_error", _unavailable_translator(url))
    return engine


def with_installed_driver(parsed: sa.URL) -> sa.URL:
    """`postgresql://` names no driver, and SQLAlchemy 2.1 would pick psycopg 3, which this project
    does not install: it means psycopg2, the driver it does install (and COPYs through)."""
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _unavailable_translator(url: str):
    """A handle_error hook: connection failures and lost connections become DatabaseUnavailable.

    Every statement on every engine made here goes through it, so a server that is down when a
    task records its run, or restarts in the middle of one, ends that task with one clear line.
    SQL errors (constraints, syntax, permissions) stay SQLAlchemy's own exceptions.
    """

    def translate(context: sa.engine.ExceptionContext) -> BaseException | None:
        if context.is_pre_ping:
            return None  # the pool replaces the dead connection by itself
        original = context.original_exception
        damaged = _damaged_sqlite_file(url, context.dialect, original)
        if damaged is not None:
            return unavailable(url, damaged)
        if context.connection is None and _is_connection_error(context.dialect, original):
            return unavailable(url, describe(original))  # could not connect at all
        if context.is_disconnect:
            return unavailable(url, f"the connection was lost: {describe(original)}")
        return None

    return translate


def _damaged_sqlite_file(url: str, dialect: sa.Dialect, error: BaseException) -> str | None:
    """What is wrong with a SQLite file that is not a whole database (overwritten, cut short), in
    words that name it; None for any other error (a busy file, a constraint, SQL)."""
    if dialect.name != "sqlite" or not isinstance(error, dialect.loaded_dbapi.DatabaseError):
        return None
    code = getattr(error, "sqlite_errorcode", None)
    if code is None or code & 0xFF not in _SQLITE_DAMAGED:  # extended codes keep the primary one in the low byte
        return None
    path = _sqlite_file(sa.engine.make_url(url))
    where = str(path) if path is not None else "the database file"
    return f"{where} is damaged ({describe(error)}): restore it from a backup, or move it aside to start a new one"


def _is_connection_error(dialect: sa.Dialect, error: BaseException) -> bool:
    dbapi = dialect.loaded_dbapi
    return isinstance(error, (dbapi.OperationalError, dbapi.InterfaceError))


def _create_sqlite_engine(url: str, parsed: sa.URL) -> sa.Engine:
    connect_args: dict = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    kwargs: dict = {}
    if _is_sqlite_memory(parsed):
        # One shared connection, or every checkout would see its own empty database.
        connect_args["check_same_thread"] = False
        kwargs["poolclass"] = sa.pool.StaticPool
    elif (path := _sqlite_file(parsed)) is not None:
        try:
            _create_sqlite_file(path)
        except OSError as exc:
            raise unavailable(url, f"{exc.strerror or exc}: {exc.filename}") from exc
    engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
    sa.event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def _is_sqlite_memory(parsed: sa.URL) -> bool:
    database = parsed.database or ""
    return database in ("", ":memory:") or parsed.query.get("mode") == "memory"


def _sqlite_file(parsed: sa.URL) -> Path | None:
    """The database file of a SQLite URL; None in memory, and for a URI filename (?uri=true),
    which is SQLite's business."""
    if _is_sqlite_memory(parsed) or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def _create_sqlite_file(path: Path) -> None:
    ensure_private_dir(path.parent)  # new folders 0o700, like the file; existing ones untouched
    try:
        # O_EXCL: only the process that creates the file sets its mode; 0o600 because run
        # parameters and errors may be private. SQLite gives its journal the same mode.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    logger.info("created SQLite database %s", path)


def _enable_sqlite_foreign_keys(dbapi_connection, _connection_record) -> None:
    # SQLite ignores ON DELETE CASCADE unless asked, per connection.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _open(url: str, engine: sa.Engine) -> sa.Connection:
    """A connection, or DatabaseUnavailable with a one-line, password-free reason."""
    try:
        return engine.connect()
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise unavailable(url, _reason(exc)) from exc


def _reason(exc: sa_exc.DBAPIError) -> str:
    return describe(exc.orig if exc.orig is not None else exc)


def describe(error: BaseException) -> str:
    """The driver's message on one line, passwords masked; the class name if it has none."""
    lines = (line.strip() for line in str(error).splitlines())
    return redact_secrets(" ".join(line for line in lines if line)) or type(error).__name__


def unavailable(url: str, reason: str) -> DatabaseUnavailable:
    message = f"database {mask_url(url)} is unavailable: {reason}"
    return DatabaseUnavailable(" ".join(message.split()))


def _migrate(url: str, engine: sa.Engine, revision: str) -> None:
    with _open(url, engine) as connection:
        current = _stored_revision(connection)
    if revision == "head" and current is not None and current == head_revision():
        return  # the common case: no lock, no Alembic chatter
    logger.info("upgrading database %s from %s to %s", mask_url(url), current or "empty", revision)
    with _open(url, engine) as connection:
        if engine.dialect.name == "sqlite":
            _migrate_sqlite(connection, revision)
        else:
            if engine.dialect.name == "postgresql":
                # Two workers starting on an empty database must not both CREATE TABLE: the
                # second waits here, then finds the schema at head. Released at commit.
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
            from alembic import command

            command.upgrade(alembic_config(connection=connection), revision)
            connection.commit()


def _stored_revision(connection: sa.Connection) -> str | None:
    """The revision in alembic_version, read directly: Alembic's own reader logs at INFO."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _migrate_sqlite(connection: sa.Connection, revision: str) -> None:
    # Foreign keys off while migrating: batch mode rebuilds a table by dropping it, and with
    # enforcement on, dropping `runs` would cascade-delete every metric. The pragma is ignored
    # inside a transaction, so it comes before BEGIN.
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        # IMMEDIATE takes the write lock up front, so a second process waits (busy timeout)
        # and then finds the schema at head instead of racing to CREATE TABLE. pysqlite would
        # otherwise run each DDL statement in its own implicit transaction.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        from alembic import command

        command.upgrade(alembic_config(connection=connection), revision)
        connection.commit()
    except BaseException:
        # Closing rolls back, and keeps a connection with foreign keys off out of the pool.
        connection.invalidate()
        raise
    connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _reset_after_fork() -> None:
    # Luigi runs tasks in forked workers: a child must not reuse the parent's pooled sockets
    # (SQLAlchemy's documented recipe), and must not inherit a lock held by another thread.
    global _lock
    _lock = threading.RLock()
    for engine in _engines.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_reset_after_fork)
