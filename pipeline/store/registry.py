"""The model registry: which trained model versions exist, and which one is in production.

A model version is registered once as a ``candidate``; :func:`promote` makes it ``production``
and archives the model it replaces; :func:`rollback` brings back the model that was in
production before the current one. Every change is a row in ``model_events`` with who did it
and why, written in the same transaction as the change.

Exactly one model is in production once the first one has been promoted. Each change runs in
one transaction that first takes the registry's write lock (``pg_advisory_xact_lock`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so that two processes promoting at once serialise
instead of both archiving the same old model; a partial unique index on
``model_versions(stage) WHERE stage = 'production'`` backs that up in the database. An advisory
lock rather than ``SELECT ... FOR UPDATE``: under READ COMMITTED a second ``FOR UPDATE`` on
"the production row" finds that row archived once it gets the lock and would read no
production at all.

SQLAlchemy Core with bound parameters only; no Luigi here (the registration gate lives with its
caller: promote is gate-free).
"""

from __future__ import annotations

import getpass
import logging
import os
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from pipeline.common.clock import utc_now
from pipeline.common.jsonvalues import finite_or_none, jsonable
from pipeline.common.secrets import redact_secrets
from pipeline.store.tables import MODEL_TASKS, model_events, model_versions, runs
from pipeline.store.transactions import locked_transaction

__all__ = ["RegistryError", "current_actor", "events", "production", "promote", "register", "rollback", "versions"]

logger = logging.getLogger(__name__)

# Arbitrary constant for pg_advisory_xact_lock around registry changes ("ovnireg");
# pipeline.store.database uses another one for migrations.
_REGISTRY_LOCK_KEY = 0x6F76_6E69_7265_67
_PROMOTING_EVENTS = ("promote", "rollback")
_MAX_VERSION = model_versions.c.version.type.length
_MAX_SHA = model_versions.c.sha256.type.length
_MAX_DATA_VERSION = model_versions.c.data_version.type.length
_MAX_ACTOR = model_events.c.actor.type.length


class RegistryError(ValueError):
    """A registry change that cannot be made; the message is one line."""


def register(
    engine: sa.Engine,
    *,
    version: str,
    run_id: str | None,
    path: str | Path,
    sha256: str,
    task: str,
    data_version: str | None,
    evaluation_path: str | Path | None,
    headline: float | None,
    metrics: dict | None,
    actor: str,
    files: dict[str, str] | None = None,
) -> None:
    """Register a trained model version as a ``candidate`` with a ``register`` event.

    ``files`` is {file name: sha256} of every file scoring reads from the model's folder (None:
    only model.keras's ``sha256`` is known, as for models registered before migration 0013).

    Idempotent: registering a version that is already registered changes nothing (a different
    sha256 is logged as a warning; the first registration is kept). A NaN headline and NaN
    metric values are stored as NULL.

    Raises:
        RegistryError: task is not classification or regression, run_id is not in the
            ledger, or a value is longer than its column.
    """
    if task not in MODEL_TASKS:
        raise RegistryError(f"model {version}: task {task!r} is not one of {', '.join(MODEL_TASKS)}")
    _check_length("version", version, _MAX_VERSION)
    _check_length("sha256", sha256, _MAX_SHA)
    if data_version is not None:
        _check_length("data_version", data_version, _MAX_DATA_VERSION)
    actor = _checked_actor(actor)
    now = utc_now()
    row = {
        "version": version,
        "run_id": run_id,
        "path": str(path),
        "sha256": sha256,
        "files": files,
        "stage": "candidate",
        "task": task,
        "data_version": data_version,
        "evaluation_path": None if evaluation_path is None else str(evaluation_path),
        "headline": finite_or_none(headline),
        "metrics": jsonable(metrics),
        "created_at": now,
    }
    with locked_transaction(engine, _REGISTRY_LOCK_KEY) as connection:
        existing = connection.execute(
            sa.select(model_versions.c.sha256).where(model_versions.c.version == version)
        ).first()
        if existing is not None:
            if existing.sha256 != sha256:
                logger.warning(
                    "model %s is registered with sha256 %s, not %s; keeping the first", version, existing.sha256, sha256
                )
            return
        if (
            run_id is not None
            and connection.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is None
        ):
            raise RegistryError(f"model {version}: run {run_id!r} is not in the ledger")
        connection.execute(sa.insert(model_versions), row)
        _event(connection, version, "register", actor, None, now)
    logger.info("registered model %s (%s) as a candidate", version, task)


def rebuilt(engine: sa.Engine, version: str, *, sha256: str, actor: str, files: dict[str, str] | None = None) -> None:
    """Record that a registered model's files were rebuilt (its folder was found damaged and made
    again from the same parameters, data and code): the new sha256 (and the other files' hashes
    when given), with a `register` event."""
    _check_length("sha256", sha256, _MAX_SHA)
    actor = _checked_actor(actor)
    with locked_transaction(engine, _REGISTRY_LOCK_KEY) as connection:
        old = connection.execute(
            sa.select(model_versions.c.sha256, model_versions.c.files).where(model_versions.c.version == version)
        ).first()
        if old is None:
            raise RegistryError(f"unknown model version {version!r}")
        if old.sha256 == sha256 and (files is None or old.files == files):
            return
        changes = {"sha256": sha256} if files is None else {"sha256": sha256, "files": files}
        connection.execute(sa.update(model_versions).where(model_versions.c.version == version).values(**changes))
        reason = f"rebuilt after its files were damaged: sha256 {(old.sha256 or '')[:16]} -> {sha256[:16]}"
        _event(connection, version, "register", actor, reason, utc_now())
    logger.warning("model %s was rebuilt: its registry row now has sha256 %s", version, sha256)


def production(engine: sa.Engine) -> dict | None:
    """The ``model_versions`` row in production, as a dict; None before the first promotion."""
    query = sa.select(model_versions).where(model_versions.c.stage == "production")
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return dict(row._mapping) if row is not None else None


def promote(engine: sa.Engine, version: str, *, actor: str, reason: str | None, event: str = "promote") -> None:
    """Make ``version`` the production model; the previous production model is archived.

    Gate-free: whether a candidate deserves production is the caller's decision. Writes an
    ``archive`` event for the replaced model and an ``event`` event (``promote``, or
    ``rollback`` when restoring) for ``version``, with ``actor`` and ``reason``. Promoting the
    model that is already in production changes nothing.

    Raises:
        RegistryError: ``version`` is not registered, or ``event`` is not promote or rollback.
    """
    if event not in _PROMOTING_EVENTS:
        raise RegistryError(f"event {event!r} is not one of {', '.join(_PROMOTING_EVENTS)}")
    actor = _checked_actor(actor)
    with locked_transaction(engine, _REGISTRY_LOCK_KEY) as connection:
        target = connection.execute(
            sa.select(model_versions.c.version, model_versions.c.stage).where(model_versions.c.version == version)
        ).first()
        if target is None:
            raise RegistryError(f"unknown model version {version!r}")
        if target.stage == "production":
            logger.info("model %s is already in production; nothing to do", version)
            return
        current = _production_version(connection)
        _switch(connection, version, current, event, actor, reason)
    logger.info("%s: model %s is in production (was %s)", event, version, current or "none")


def previous_production(engine: sa.Engine) -> str | None:
    """The model a rollback would put back (still registered); None when there is none."""
    with engine.connect() as connection:
        current = _production_version(connection)
        return _previous_production(connection, current) if current is not None else None


def _previous_production(connection: sa.Connection, current: str) -> str | None:
    # The registry's promote and rollback events, newest first: the first other version.
    history = connection.execute(
        sa.select(model_events.c.version)
        .select_from(model_events.join(model_versions, model_versions.c.version == model_events.c.version))
        .where(model_events.c.event.in_(_PROMOTING_EVENTS), model_events.c.version != current)
        .order_by(model_events.c.id.desc())
        .limit(1)
    ).first()
    return history.version if history is not None else None


def rollback(engine: sa.Engine, *, actor: str, reason: str | None) -> str:
    """Put back the model that was in production before the current one; return its version.

    The registry's promote and rollback events are walked newest first; the first version that
    differs from the current production model (and is still registered) is restored. The
    current model is archived. So two rollbacks in a row return to where they started.

    Raises:
        RegistryError: no model is in production, or none was in production before it.
    """
    actor = _checked_actor(actor)
    with locked_transaction(engine, _REGISTRY_LOCK_KEY) as connection:
        current = _production_version(connection)
        if current is None:
            raise RegistryError("nothing to roll back: no model is in production")
        restored = _previous_production(connection, current)
        if restored is None:
            raise RegistryError(f"nothing to roll back to: no model was in production before {current}")
        _switch(connection, restored, current, "rollback", actor, reason)
    logger.info("rollback: model %s is in production again (was %s)", restored, current)
    return restored


def find(engine: sa.Engine, version: str) -> dict | None:
    """The ``model_versions`` row of one version, as a dict; None when it is not registered."""
    query = sa.select(model_versions).where(model_versions.c.version == version)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return dict(row._mapping) if row is not None else None


def versions(engine: sa.Engine) -> list[dict]:
    """Every registered model version as a dict, newest first."""
    query = sa.select(model_versions).order_by(model_versions.c.created_at.desc(), model_versions.c.version.desc())
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def events(engine: sa.Engine, version: str | None = None) -> list[dict]:
    """The registry's events (of one version, or all), oldest first."""
    query = sa.select(model_events).order_by(model_events.c.id)
    if version is not None:
        query = query.where(model_events.c.version == version)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def current_actor() -> str:
    """The OS user running this process, for the ``actor`` of an event; "unknown" if none."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (3.11), or OSError (3.13+)
        user = ""
    if not user:
        user = os.environ.get("USER") or os.environ.get("LOGNAME") or ""
    return user or "unknown"


def _production_version(connection: sa.Connection) -> str | None:
    rows = (
        connection.execute(sa.select(model_versions.c.version).where(model_versions.c.stage == "production"))
        .scalars()
        .all()
    )
    if len(rows) > 1:  # the unique index makes this impossible; never silently pick one
        raise RegistryError(f"several models in production: {', '.join(sorted(rows))}")
    return rows[0] if rows else None


def _switch(
    connection: sa.Connection, version: str, current: str | None, event: str, actor: str, reason: str | None
) -> None:
    """Archive ``current`` (if any), then put ``version`` in production, with their events."""
    now = utc_now()
    if current is not None:
        # Archive first: the unique index admits one production row at a time.
        connection.execute(
            sa.update(model_versions).where(model_versions.c.version == current).values(stage="archived")
        )
        _event(connection, current, "archive", actor, f"replaced by {version} ({event})", now)
    connection.execute(sa.update(model_versions).where(model_versions.c.version == version).values(stage="production"))
    _event(connection, version, event, actor, reason, now)


def _event(connection: sa.Connection, version: str, event: str, actor: str, reason: str | None, at: datetime) -> None:
    connection.execute(
        sa.insert(model_events),
        {
            "version": version,
            "event": event,
            "actor": actor,
            "reason": None if reason is None else redact_secrets(reason),
            "at": at,
        },
    )


def _checked_actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise RegistryError("actor must not be empty")
    _check_length("actor", actor, _MAX_ACTOR)
    return actor


def _check_length(name: str, value: str, limit: int) -> None:
    # Checked here: PostgreSQL would reject an over-long value while SQLite would store it.
    if not value or len(value) > limit:
        raise RegistryError(f"{name} {str(value)[:80]!r} must have 1 to {limit} characters")
