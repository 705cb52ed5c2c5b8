"""Train once, copy many: the `trained` fixture's model is trained once per worker and backend.

A trained data root is a template: the first test that asks for one on a backend trains it
(example data, the digits CNN, evaluation, registration), and every test after it gets a copy
of the data folder and of the database in well under a second.

Versions hash the data set's path, and the registry and the snapshot keep absolute paths, so a
copy only passes for the original at the same place. Each worker therefore has one live folder,
`<worker's basetemp>/trained/data`: the template is trained there, and each test gets it wiped
and copied back from the template (tests in one worker run one at a time). The test's own
`tmp_path / "data"` is a link to it, so tests write where they always did.

Databases: SQLite is a file copied beside the test's other files. PostgreSQL copies a whole
database with `CREATE DATABASE ... TEMPLATE`, the server's own way, then drops it after the test
(`DROP DATABASE ... WITH (FORCE)`): the test role needs CREATEDB, on PostgreSQL 13 or later.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from pipeline.examples import ExampleData
from pipeline.store import database


@dataclass(frozen=True)
class Template:
    data: Path  # the trained data folder, kept aside, never written by a test
    database_url: str  # the template database: copied, never connected to by a test
    examples: ExampleData


def reset(live: Path, source: Path | None = None) -> None:
    """Empty the live folder, then copy `source` into it (modification times kept: the content
    fingerprint's cache and every integrity seal stay valid)."""
    if live.exists():
        shutil.rmtree(live)
    if source is None:
        live.mkdir(parents=True)
    else:
        shutil.copytree(source, live, symlinks=True)


def keep(live: Path, store: Path, database_url: str, examples: ExampleData) -> Template:
    """Set a freshly trained live folder aside as the template."""
    database.dispose_all()  # no pooled session may hold the template database open
    shutil.copytree(live, store, symlinks=True)
    return Template(store, database_url, examples)


# --- databases -----------------------------------------------------------------------------------


def backend(url: str) -> str:
    """ "sqlite" or "postgresql", whatever the driver."""
    return sa.engine.make_url(url).get_backend_name()


def new_template_database(kind_of: str, folder: Path) -> tuple[str, Callable[[], None]]:
    """An empty database to train the template in, like `kind_of`; -> (url, drop)."""
    if backend(kind_of) == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'overnight.db'}", lambda: None
    return _postgres_database(kind_of, f"overnight_template_{uuid.uuid4().hex[:16]}", template=None)


def copy_database(template: Template, like: str) -> tuple[str, Callable[[], None]]:
    """A copy of the template's database where the test's own would be; -> (url, drop).

    SQLite: the file at `like`'s path. PostgreSQL: a new database beside the server's test database.
    """
    if backend(like) == "sqlite":
        source = Path(sa.engine.make_url(template.database_url).database)
        target = Path(sa.engine.make_url(like).database)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return like, lambda: None
    name = sa.engine.make_url(template.database_url).database
    return _postgres_database(like, f"overnight_test_{uuid.uuid4().hex[:16]}", template=name)


def _postgres_database(like: str, name: str, template: str | None) -> tuple[str, Callable[[], None]]:
    base = sa.engine.make_url(like)
    base = base.difference_update_query(["options"])  # the test schema's search_path: not in a new database
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    copied = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"{copied}'))
    url = base.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        database.dispose_all()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop
