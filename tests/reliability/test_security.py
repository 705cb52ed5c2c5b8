"""Security: no password anywhere it could be read, no SQL built from text, safe model loading,
a read-only role for analysts, and a private working tree.

- A task run against PostgreSQL with a password in OVERNIGHT_DATABASE_URL (the test server trusts
  127.0.0.1, so any password is accepted) leaves that password in no table, no log line and no
  file under the data root, also when its failure message quotes the URL.
- An AST scan of pipeline/ and tasks/ finds no SQL text (sa.text, exec_driver_sql, execute, COPY,
  read_sql, literal_column) built by f-string, +, % or .format, apart from an allow-list of
  static statements, each with the reason it is safe.
- pipeline.stages.prediction.load_model refuses a .keras file whose Lambda layer carries code.
- scripts/create_readonly_role.sql gives a login in `overnight_reader` SELECT on every table and
  view, and nothing else.
- data_root is created 0700 (unless `[overnight] private = false`), a new SQLite file 0600.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.common.files import ensure_dir, ensure_private_dir
from pipeline.store import database
from pipeline.store.tables import metadata as schema
from pipeline.store.views import view_metadata
from tests.conftest import _postgres_missing, _postgres_schema_url

REPO_ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).with_name("luigi"))
PASSWORD = "dbfault-Pw-7f3a9c"  # unusual enough that finding it anywhere is a leak
# Every analyst view pipeline/store/views.py describes: a new one is checked without being listed here.
VIEWS = tuple(view_metadata.tables)
# Every table overnight's migrations create: a new one is checked without being listed here.
TABLES = (*(table.name for table in schema.sorted_tables), "alembic_version")


# --- passwords -----------------------------------------------------------------------------------


@pytest.fixture
def dbfault_postgres_url() -> Iterator[str]:
    yield from _postgres_schema_url()


def dbfault_config(root: Path, dataset: Path) -> Path:
    root.mkdir(parents=True)
    config = root / "security.cfg"
    config.write_text(f"[overnight]\ndata_root = {root / 'data'}\n\n[dataset]\npath = {dataset}\nlabel = label\n")
    return config


def dbfault_env(config: Path, url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OVERNIGHT_")}
    env.update(LUIGI_CONFIG_PATH=str(config), OVERNIGHT_DATABASE_URL=url, TF_CPP_MIN_LOG_LEVEL="2")
    return env


# A real `luigi --module tasks` run whose data loader fails with a message that quotes the
# database URL, password included, as a careless driver or library might.
FAILING_RUN = textwrap.dedent("""
    import os, sys
    import pipeline.stages.raw
    def read_raw(*args, **kwargs):
        raise RuntimeError("could not read the data behind " + os.environ["OVERNIGHT_DATABASE_URL"])
    pipeline.stages.raw.read_raw = read_raw
    from luigi.cmdline import luigi_run
    luigi_run(["--module", "tasks", "IngestData"])
""")


def dbfault_database_text(url: str) -> str:
    """Every row of every table and view, as text (JSON columns included)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine, views=True)
        with engine.connect() as connection:
            return "\n".join(
                repr(tuple(row)) for table in metadata.sorted_tables for row in connection.execute(sa.select(table))
            )
    finally:
        engine.dispose()


def test_no_password_in_runs_logs_or_files(dbfault_postgres_url, tmp_path):
    """Neither the URL's password nor PGPASSWORD's reaches a table, a log line, a file or doctor."""
    url = sa.engine.make_url(dbfault_postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    dataset = tmp_path / "tiny.csv"
    dataset.write_text("size,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(20)))
    good = dbfault_config(tmp_path / "good", dataset)
    bad = dbfault_config(tmp_path / "bad", dataset)

    # The password also in PGPASSWORD, as libpq users set it: no run records its environment.
    succeeded = subprocess.run(
        [LUIGI, "--module", "tasks", "SplitData"],
        cwd=REPO_ROOT,
        env={**dbfault_env(good, url), "PGPASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=120,
    )
    failed = subprocess.run(
        [sys.executable, "-c", FAILING_RUN],
        cwd=REPO_ROOT,
        env={**dbfault_env(bad, url), "PGPASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=120,
    )
    doctor = subprocess.run(
        [str(Path(LUIGI).with_name("overnight")), "doctor", "--no-tensorflow"],
        cwd=REPO_ROOT,
        env={**dbfault_env(good, url), "PGPASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert succeeded.returncode == 0, succeeded.stderr[-3000:]
    assert failed.returncode == 30, failed.stderr[-3000:]
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    logs = succeeded.stdout + succeeded.stderr + failed.stdout + failed.stderr + doctor.stdout + doctor.stderr
    assert "could not read the data behind postgresql+psycopg2://postgres:***@" in failed.stderr
    stored = dbfault_database_text(dbfault_postgres_url)
    assert "could not read the data behind postgresql+psycopg2://postgres:***@" in stored  # runs.error
    assert stored.count("'succeeded'") >= 3  # IngestData, ValidateData, SplitData were recorded
    leaks = {
        "runs and every other table": PASSWORD in stored,
        "Luigi's output": PASSWORD in logs,
        "files under the data roots": [
            str(path)
            for path in sorted(tmp_path.rglob("*"))
            if path.is_file() and PASSWORD.encode() in path.read_bytes()
        ],
    }
    assert leaks == {"runs and every other table": False, "Luigi's output": False, "files under the data roots": []}


def test_database_url_stays_out_of_task_ids_and_the_scheduler(dbfault_luigi_config):
    from tasks.config import database_url, overnight

    url = f"postgresql+psycopg2://overnight:{PASSWORD}@db:5432/prod"
    dbfault_luigi_config(database_url=url)
    settings = overnight()

    assert database_url() == url  # still read from the config file when the environment has none
    public = settings.to_str_params(only_significant=True, only_public=True)
    assert "database_url" not in public and PASSWORD not in settings.task_id + repr(settings)


def test_one_line_errors_filter_masks_passwords_everywhere():
    from pipeline.errors import DataError
    from tasks.errors import OneLineLogErrors

    url = f"postgresql+psycopg2://overnight:{PASSWORD}@db:5432/prod"

    def filtered(message, *args, error=None):
        record = logging.LogRecord(
            "luigi-interface",
            logging.ERROR,
            __file__,
            1,
            message,
            args,
            (type(error), error, error.__traceback__) if error else None,
        )
        OneLineLogErrors().filter(record)
        return logging.Formatter().format(record)

    try:
        raise RuntimeError(f"cannot reach {url}")
    except RuntimeError as error:
        unexpected = filtered("failed %s", "IngestData()", error=error)
    expected = filtered("failed IngestData()", error=DataError(f"no such file {url}"))
    scheduling = filtered(
        "Will not run SplitData() or any dependencies due to error in complete() method:\n"
        'Traceback (most recent call last):\n  File "x.py", line 1, in complete\n'
        f"pipeline.errors.DataError: https:/user:{PASSWORD}@host/data.csv: no such file"
    )

    assert "Traceback" in unexpected and "***" in unexpected  # unexpected errors keep their traceback
    assert expected == "failed IngestData(): no such file postgresql+psycopg2://overnight:***@db:5432/prod"
    assert scheduling == (
        "Will not run SplitData() or any dependencies due to error in complete() method: "
        "https:/user:***@host/data.csv: no such file"
    )
    assert PASSWORD not in unexpected + expected + scheduling


# Where credentials could be written down in the repository (tests hold fake ones on purpose).
REPOSITORY_TEXT = (
    "pipeline",
    "tasks",
    "models",
    "scripts",
    "docs",
    "benchmarks",
    "README.md",
    "CHANGELOG.md",
    "mkdocs.yml",
    "luigi.cfg",
    "logging.ini",
    "Makefile",
    "setup.py",
)
# scheme://user:secret@ where the secret is not one of the placeholders docs use.
URL_WITH_PASSWORD = re.compile(r"[A-Za-z][\w+.-]*://[^:/@\s'\"]+:(?P<secret>[^@\s/'\"]+)@")
PLACEHOLDERS = {"password", "pw", "***", "secret", "PASSWORD"}


def test_no_credentials_are_written_in_the_repository():
    found = []
    for name in REPOSITORY_TEXT:
        root = REPO_ROOT / name
        for path in sorted(root.rglob("*") if root.is_dir() else [root]):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".png", ".keras"):
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                for match in URL_WITH_PASSWORD.finditer(line):
                    if match["secret"] not in PLACEHOLDERS:
                        found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert found == []


# --- SQL is never built from text ----------------------------------------------------------------

# Calls whose first argument is SQL text.
SQL_METHODS = {
    "exec_driver_sql",
    "execute",
    "executemany",
    "executescript",
    "copy_expert",
    "copy_from",
    "copy_to",
    "mogrify",
    "read_sql",
    "read_sql_query",
    "literal_column",
}
SQLALCHEMY_NAMES = {"sa", "sqlalchemy"}

# (file, function): why its dynamically assembled statement is safe. Every entry must still be
# needed (the test fails on a stale one), so the list stays the truth.
ALLOWED = {
    (
        "pipeline/store/resolutions.py",
        "refresh_examples",
    ): "The resolution rule's SQL (module constant) with a constant WHERE clause; the ids are bound.",
    (
        "pipeline/store/resolutions.py",
        "rebuild",
    ): "The resolution, quality and conflict SQL (module constants) with an empty WHERE clause.",
    (
        "pipeline/store/migrations/versions/0007_label_resolutions.py",
        "_drop_views",
    ): "DROP VIEW of the migration's own view names (module constants).",
    (
        "pipeline/store/row_writing.py",
        "copy_frame",
    ): "COPY statement: table and column names are module constants (predictions_table.name, "
    "_TABLE_COLUMNS, online_log.ONLINE_COLUMNS and 'origin'); the NULL marker is the constant \\N or "
    "'null-' + uuid4().hex. No data, no config text; the rows travel as CSV data, never as SQL.",
    (
        "pipeline/store/row_writing.py",
        "sqlite_rows",
    ): "INSERT with ? placeholders; table and column names are module constants; the values are bound by executemany.",
    (
        "pipeline/store/migrations/versions/0002_nightly.py",
        "downgrade",
    ): "DROP VIEW for each name in the migration's own VIEWS constant (literal view names).",
    (
        "pipeline/store/migrations/versions/0006_annotators.py",
        "_drop_views",
    ): "DROP VIEW for each name in the migration's own VIEWS and OLD_VIEWS constants (literal view names).",
    (
        "pipeline/store/migrations/versions/0010_online_predictions.py",
        "_views_kept",
    ): "DROP VIEW, then CREATE VIEW again, of the views SQLite's own catalogue lists (those the "
    "earlier migrations created, names and SQL as stored); no data, no config text.",
}


def _is_sql_call(call: ast.Call, sqlalchemy_text: set[str]) -> bool:
    function = call.func
    if isinstance(function, ast.Attribute):
        if function.attr == "text":  # sa.text / sqlalchemy.text, not matplotlib's axes.text
            return isinstance(function.value, ast.Name) and function.value.id in SQLALCHEMY_NAMES
        return function.attr in SQL_METHODS
    return isinstance(function, ast.Name) and (function.id in sqlalchemy_text or function.id in SQL_METHODS)


def _built(node: ast.AST | None) -> bool:
    """Whether node assembles a string at run time: f-string, +, %, .format(), str.join()."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "join")


class _SqlBuildingFinder(ast.NodeVisitor):
    """(function, line, source) of every SQL call whose text is built at run time."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[tuple[str, int, str]] = []
        self.sqlalchemy_text: set[str] = set()
        self.scopes: list[tuple[str, dict[str, list[ast.AST]]]] = []

    def visit_Module(self, node: ast.Module) -> None:
        for statement in ast.walk(node):
            if isinstance(statement, ast.ImportFrom) and (statement.module or "").split(".")[0] == "sqlalchemy":
                self.sqlalchemy_text |= {
                    alias.asname or alias.name for alias in statement.names if alias.name == "text"
                }
        self._scope("<module>", node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._scope(node.name, node)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - ast.NodeVisitor names its hooks so

    def _scope(self, name: str, node: ast.AST) -> None:
        assignments: dict[str, list[ast.AST]] = {}
        for child in ast.walk(node):
            if isinstance(child, ast.Assign):
                for target in child.targets:
                    if isinstance(target, ast.Name):
                        assignments.setdefault(target.id, []).append(child.value)
            elif isinstance(child, (ast.AnnAssign, ast.AugAssign)) and isinstance(child.target, ast.Name):
                value = (
                    child.value
                    if isinstance(child, ast.AnnAssign)
                    else ast.BinOp(left=child.target, op=child.op, right=child.value)
                )
                if value is not None:
                    assignments.setdefault(child.target.id, []).append(value)
        self.scopes.append((name, assignments))
        self.generic_visit(node)
        self.scopes.pop()

    def visit_Call(self, node: ast.Call) -> None:
        if _is_sql_call(node, self.sqlalchemy_text) and node.args:
            argument = node.args[0]
            values = [argument]
            if isinstance(argument, ast.Name):  # a statement held in a variable: how was it made?
                for _, assignments in reversed(self.scopes):
                    if argument.id in assignments:
                        values = assignments[argument.id]
                        break
            if any(_built(value) for value in values):
                self.found.append((self.scopes[-1][0], node.lineno, ast.get_source_segment(self.source, node) or ""))
        self.generic_visit(node)


def find_sql_building(source: str) -> list[tuple[str, int, str]]:
    finder = _SqlBuildingFinder(source)
    finder.visit(ast.parse(source))
    return finder.found


def test_the_scan_catches_every_way_of_building_sql():
    source = textwrap.dedent("""
        import sqlalchemy as sa
        from sqlalchemy import text as sql_text

        def bad(connection, table, value, cursor):
            connection.execute(sa.text(f"SELECT * FROM {table}"))
            connection.exec_driver_sql("DELETE FROM " + table)
            connection.execute(sql_text("SELECT %s" % value))
            cursor.execute("SELECT {}".format(value))
            statement = f"DROP TABLE {table}"
            cursor.execute(statement)
            cursor.copy_expert(" ".join(["COPY", table, "FROM STDIN"]), None)
            query = "SELECT * FROM t WHERE a = "
            query += value
            connection.execute(sa.text(query))
            sa.literal_column(f"'{value}'")

        def good(connection, value, axes):
            connection.execute(sa.text("SELECT * FROM t WHERE a = :value"), {"value": value})
            connection.execute(sa.select(sa.column("a")).where(sa.column("a") == value))
            statement = "SELECT 1"
            connection.exec_driver_sql(statement)
            axes.text(0, 0, f"{value}")
            connection.execute(sa.text("SELECT a "
                                       "FROM t"))
    """)

    found = find_sql_building(source)

    assert [function for function, _, _ in found] == ["bad"] * 8, found


def test_no_sql_is_assembled_from_data_or_config_text():
    found = {}
    for folder in ("pipeline", "tasks"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            for function, line, code in find_sql_building(path.read_text()):
                found.setdefault((relative, function), []).append(f"{relative}:{line}: {code}")

    unexplained = {key: lines for key, lines in found.items() if key not in ALLOWED}
    stale = sorted(set(ALLOWED) - set(found))
    assert unexplained == {}, "SQL built from strings (bind parameters, or allow-list it with a reason)"
    assert stale == [], "allow-list entries that no longer match anything"
    assert len(found) == len(ALLOWED) == 8  # the allow-listed static statements, and nothing else


# --- models --------------------------------------------------------------------------------------


def test_a_model_with_a_lambda_layer_is_refused(tmp_path):
    import keras

    from pipeline.artifacts.model import MODEL, ModelFolder

    inputs = keras.Input(shape=(2,))
    # Arbitrary code inside the model file: safe mode must refuse to run it on load.
    outputs = keras.layers.Lambda(lambda tensor: tensor * 2)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / MODEL)
    ModelFolder(tmp_path).seal()  # sealed as a stage seals it: the file is what was written

    with pytest.raises(ValueError, match="safe_mode"):
        ModelFolder(tmp_path).load_model()


# --- the read-only role --------------------------------------------------------------------------


def dbfault_psql(url: sa.URL, script: Path, **variables: str) -> subprocess.CompletedProcess:
    psql = os.environ.get("PSQL", "psql")
    libpq = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    arguments = [psql, libpq, "--no-psqlrc", "-q", "-X", "-f", str(script)]
    for name, value in variables.items():
        arguments += ["-v", f"{name}={value}"]
    return subprocess.run(arguments, capture_output=True, text=True, timeout=60)


def test_readonly_role_reads_every_table_and_view_and_writes_nothing(dbfault_postgres_url):
    url = sa.engine.make_url(dbfault_postgres_url)
    schema = url.query["options"].removeprefix("-csearch_path=")
    if not shutil.which(os.environ.get("PSQL", "psql")):
        _postgres_missing("psql is not installed: the read-only role script needs it")
    database.connect(dbfault_postgres_url)  # the schema at head: tables and views exist
    suffix = uuid.uuid4().hex[:10]
    reader, analyst = f"overnight_reader_{suffix}", f"overnight_analyst_{suffix}"
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    script = REPO_ROOT / "scripts" / "create_readonly_role.sql"
    try:
        created = dbfault_psql(url, script, schema=schema, reader=reader)
        assert created.returncode == 0, created.stderr
        again = dbfault_psql(url, script, schema=schema, reader=reader)  # running it twice is fine
        assert again.returncode == 0, again.stderr
        with admin.begin() as connection:
            # The script's commented example, with test names (trust auth: the password is unused).
            connection.execute(sa.text(f'CREATE ROLE "{analyst}" LOGIN PASSWORD \'REPLACE-ME\' IN ROLE "{reader}"'))
            # A table created after the script: default privileges make it readable too.
            connection.execute(sa.text("CREATE TABLE later_table (id integer)"))
        checks = _readonly_checks(url.set(username=analyst, password=None))
    finally:
        with admin.begin() as connection:
            for role in (analyst, reader):
                if connection.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}).first():
                    connection.execute(sa.text(f'DROP OWNED BY "{role}"'))
                    connection.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()

    failed = {check: outcome for check, outcome in checks.items() if outcome != "ok"}
    assert failed == {}
    # views, tables, the later table, five writes on two tables, CREATE, TEMP
    assert len(checks) == len(VIEWS) + len(TABLES) + 1 + 5 * 2 + 2


def _readonly_checks(url: sa.URL) -> dict[str, str]:
    """check -> "ok" or what went wrong, as the analyst's login."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    checks: dict[str, str] = {}

    def attempt(name: str, statement: str, *, allowed: bool) -> None:
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(statement))
        except sa.exc.ProgrammingError as error:
            refused = getattr(error.orig, "pgcode", None) == "42501"  # insufficient_privilege
            checks[name] = "ok" if refused and not allowed else f"refused: {error.orig}".strip()
        else:
            checks[name] = "ok" if allowed else "allowed"

    try:
        for name in (*VIEWS, *TABLES, "later_table"):
            attempt(f"SELECT {name}", f"SELECT * FROM {name} LIMIT 1", allowed=True)
        for table, row in (
            ("runs", "('r', 'T', 'running', now())"),
            ("feedback", "('x', 'a', 1, now(), 's', 'alice')"),
        ):
            columns = {
                "runs": "(run_id, task, status, started_at)",
                "feedback": "(example_id, label, label_value, received_at, source, annotator)",
            }[table]
            attempt(f"INSERT {table}", f"INSERT INTO {table} {columns} VALUES {row}", allowed=False)
            attempt(f"UPDATE {table}", f"UPDATE {table} SET {columns.strip('()').split(',')[0]} = 'y'", allowed=False)
            attempt(f"DELETE {table}", f"DELETE FROM {table}", allowed=False)
            attempt(f"TRUNCATE {table}", f"TRUNCATE {table}", allowed=False)
            attempt(f"DROP {table}", f"DROP TABLE {table}", allowed=False)
        attempt("CREATE TABLE", "CREATE TABLE analyst_table (id integer)", allowed=False)
        # PostgreSQL grants TEMPORARY on every database to PUBLIC: a session's own scratch tables,
        # gone at disconnect, beside overnight's tables and never over them (documented).
        attempt("CREATE TEMP TABLE", "CREATE TEMP TABLE analyst_scratch (id integer)", allowed=True)
    finally:
        engine.dispose()
    return checks


# --- a private working tree ----------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_private_dir_makes_new_folders_owner_only_whatever_the_umask(tmp_path):
    (tmp_path / "shared").mkdir(mode=0o755)
    os.chmod(tmp_path / "shared", 0o755)
    previous = os.umask(0o022)
    try:
        made = ensure_private_dir(tmp_path / "shared" / "a" / "b")
        os.umask(0o277)  # a umask that would take the owner's own write and search bits
        ensure_private_dir(tmp_path / "other")
    finally:
        os.umask(previous)

    assert made == tmp_path / "shared" / "a" / "b"
    assert _mode(tmp_path / "shared") == 0o755  # existing folders keep their mode
    assert _mode(tmp_path / "shared" / "a") == 0o700
    assert _mode(tmp_path / "shared" / "a" / "b") == 0o700
    assert _mode(tmp_path / "other") == 0o700
    ensure_private_dir(tmp_path / "shared" / "a" / "b")  # again: nothing to do, no error


def test_ensure_dir_not_private_follows_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        ensure_dir(tmp_path / "open", private=False)
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "open") == 0o755


def test_ensure_private_dir_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(NotADirectoryError) as caught:
        ensure_private_dir(tmp_path / "a-file" / "data")
    assert caught.value.filename == str(tmp_path / "a-file")


def test_ensure_dir_accepts_a_folder_another_process_makes_while_it_looks(tmp_path, monkeypatch):
    # Luigi's forked workers create data/.locks at once: the folder may appear between the look
    # that finds nothing and the look that asks what is there.
    target = tmp_path / "data" / ".locks"
    looks_at_target = []
    real_is_dir = Path.is_dir

    def racing_is_dir(self, *args, **kwargs):
        if self == target and not looks_at_target:
            looks_at_target.append(self)
            target.mkdir(parents=True)  # the other worker, just after this look
            return False
        return real_is_dir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "is_dir", racing_is_dir)
    assert ensure_private_dir(target) == target
    assert looks_at_target and real_is_dir(target)


@pytest.fixture
def dbfault_luigi_config(tmp_path, monkeypatch):
    """dbfault_luigi_config(**overnight_options): a Luigi config file in force for this test."""
    from luigi.configuration.cfg_parser import LuigiConfigParser
    from luigi.task_register import Register

    monkeypatch.delenv("OVERNIGHT_DATABASE_URL", raising=False)

    def apply(**options: str) -> None:
        path = tmp_path / "private.cfg"
        path.write_text("[overnight]\n" + "".join(f"{key} = {value}\n" for key, value in options.items()))
        monkeypatch.setattr(LuigiConfigParser, "_instance", None)
        monkeypatch.setattr(LuigiConfigParser, "_config_paths", [str(path)])
        Register.clear_instance_cache()

    yield apply
    Register.clear_instance_cache()


@pytest.mark.parametrize(("private", "mode"), [(None, 0o700), ("true", 0o700), ("false", 0o755)])
def test_data_root_is_created_owner_only_unless_configured(private, mode, tmp_path, dbfault_luigi_config):
    from tasks.config import data_root

    root = tmp_path / "work" / "data"
    dbfault_luigi_config(data_root=str(root), **({"private": private} if private else {}))
    previous = os.umask(0o022)
    try:
        assert data_root() == root
    finally:
        os.umask(previous)
    assert _mode(root) == mode
    assert _mode(tmp_path / "work") == mode  # the parents it had to create too


def test_sqlite_database_in_a_new_folder_is_owner_only(tmp_path):
    path = tmp_path / "new" / "overnight.db"
    try:
        database.connect(f"sqlite:///{path}")
    finally:
        database.dispose_all()
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_a_mistyped_config_path_stops_every_entry_point_before_anything_is_written(tmp_path):
    # Luigi skips a missing LUIGI_CONFIG_PATH without a word: the night would run on the defaults.
    missing = tmp_path / "my-dataset.cfg"
    env = {k: v for k, v in os.environ.items() if k != "OVERNIGHT_DATABASE_URL"}
    env.update(LUIGI_CONFIG_PATH=str(missing), TF_CPP_MIN_LOG_LEVEL="3")
    luigi_command = str(Path(sys.executable).with_name("luigi"))
    commands = {
        "luigi": [luigi_command, "--module", "tasks", "Nightly", "--date", "2026-11-05"],
        "overnight": [str(Path(sys.executable).with_name("overnight")), "runs"],
        "nightly.sh": [str(REPO_ROOT / "scripts" / "nightly.sh"), "2026-11-05"],
    }
    for name, command in commands.items():
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode != 0, (name, done.stdout, done.stderr)
        lines = [line for line in done.stderr.splitlines() if f"LUIGI_CONFIG_PATH={missing}: no such file" in line]
        assert len(lines) == 1, (name, done.stderr)
        assert "Traceback" not in done.stderr, (name, done.stderr)
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # no data folder, no database


def test_a_password_in_the_query_string_is_masked_by_doctor_runs_and_db_upgrade():
    from click.testing import CliRunner

    from pipeline.store.database import mask_url
    from tasks.cli import main as overnight

    url = "postgresql+psycopg2://postgres@127.0.0.1:1/test?password=hunter2&sslmode=disable"
    assert "hunter2" not in mask_url(url) and "password=***" in mask_url(url)
    for command in (["doctor", "--no-tensorflow"], ["runs"], ["db", "upgrade"]):
        result = CliRunner().invoke(overnight, command, env={"OVERNIGHT_DATABASE_URL": url})
        assert result.exit_code == 2, (command, result.output)
        assert "hunter2" not in result.output and "password=***" in result.output, (command, result.output)
