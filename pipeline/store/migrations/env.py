"""Alembic environment, driven from code by pipeline.store.database (there is no alembic.ini).

The caller hands over an open connection in ``config.attributes["connection"]``; that lets
pipeline.store.database hold a lock and its own transaction around the upgrade. Without one, the
``sqlalchemy.url`` main option is used. Logging is deliberately left alone (no fileConfig):
the application that runs the migration owns the logging configuration.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from pipeline.store.tables import metadata

config = context.config


def _configure(**kwargs) -> None:
    context.configure(target_metadata=metadata, compare_type=True, **kwargs)


def run_offline() -> None:
    """Emit the SQL instead of running it (``--sql``), e.g. for a DBA to review."""
    url = config.get_main_option("sqlalchemy.url")
    _configure(url=url, literal_binds=True, render_as_batch=sa.engine.make_url(url).get_backend_name() == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: sa.Connection) -> None:
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        run_offline()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_online(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            run_online(connection)
    finally:
        engine.dispose()


main()
