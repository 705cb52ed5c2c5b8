"""Acknowledged drift alerts: "seen it, stop failing the night for it until something else happens".

The anchor is Prometheus Alertmanager's silence (a matcher, a reason, an author, an expiry). An
acknowledgement names a feature and one drift method; `acknowledge` takes the score of that
alert on the latest night that had it and stores a ceiling above it (`factor` times the score):

- an alert of that feature and method, on a night up to `until`, scoring at most the ceiling, is
  still computed and stored but shown as acknowledged (`drift_alerts.acknowledged`) and does
  not fail the night;
- a new kind of alert on the same feature (another method), or a score past the ceiling, is
  not covered: it fails the night again. (A share, such as `per_night`'s or `constant`'s, cannot
  pass 1: acknowledged at 0.5 or more, only another method fails the night again.)

Ending one covers the nights after the latest night monitored: a night that passed because of
an acknowledgement still shows it acknowledged.

Rows are only ever added (`drift_acknowledgements`, like `model_events`): ending one is an
`unack` row naming it, so the history of who silenced what, when and why stays readable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa

from pipeline.common.clock import utc_now
from pipeline.common.secrets import redact_secrets
from pipeline.store.tables import drift, drift_acknowledgements
from pipeline.store.transactions import locked_transaction
from pipeline.store.values import as_date

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x6F76_6E69_6163_6B  # "ovniack": pg_advisory_xact_lock around acknowledgement changes
_MAX_ACTOR = drift_acknowledgements.c.actor.type.length


class AcknowledgementError(ValueError):
    """An acknowledgement that cannot be made or ended; the message is one line."""


@dataclass(frozen=True)
class Acknowledged:
    """One `ack` row written: which alert, at what score, covered up to which ceiling."""

    id: int
    feature: str
    method: str
    score: float
    ceiling: float
    batch_date: date


def acknowledge(
    engine: sa.Engine,
    feature: str,
    *,
    reason: str,
    actor: str,
    factor: float,
    method: str | None = None,
    since: date | None = None,
    until: date | None = None,
    model_version: str | None = None,
) -> list[Acknowledged]:
    """Acknowledge the alerts of `feature` (of `method` only, if given) on the latest night that had one.

    Args:
        factor: the ceiling is the acknowledged score times this (at least 1): a later score
            past it fails the night again.
        since: the first night it covers; None: the night of the alert acknowledged (a night
            that failed before stays failed unless named here).
        until: the last night the acknowledgement covers; None: until `end` is called.
        model_version: take the latest alert of this model only; None: of any model.

    Returns:
        One `Acknowledged` per method acknowledged, in method order.

    Raises:
        AcknowledgementError: no reason or actor, a factor under 1, or no stored alert of the
            feature (and method) to acknowledge; the message names the feature.
    """
    reason, actor = _required("reason", reason), _required("actor", actor, _MAX_ACTOR)
    if not factor >= 1:
        raise AcknowledgementError(f"the acknowledged score factor must be at least 1, not {factor}")
    now = utc_now()
    with locked_transaction(engine, _LOCK_KEY) as connection:
        alerts = _latest_alerts(connection, feature, method, model_version)
        if not alerts:
            kind = f" by {method}" if method else ""
            raise AcknowledgementError(
                f"no drift alert on {feature!r}{kind} to acknowledge (see the drift_alerts view); "
                "for a feature that alerts by design, set a policy: [MonitorDrift] policies"
            )
        unscored = [row.method for row in alerts if row.score is None]
        if unscored:
            raise AcknowledgementError(
                f"the {feature!r} alert by {', '.join(unscored)} has no finite score to acknowledge "
                "(an infinite or unreadable value): fix the input"
            )
        first = since or alerts[0].batch_date
        if until is not None and until < first:
            night = "its --from night" if since else "the night of the alert to acknowledge"
            raise AcknowledgementError(f"--until {until} is before {first}, {night}: it would cover nothing")
        written = []
        for row in alerts:
            values = {
                "event": "ack",
                "feature": feature,
                "method": row.method,
                "score": row.score,
                "ceiling": row.score * factor,
                "batch_date": row.batch_date,
                "since": first,
                "until": until,
                "actor": actor,
                "reason": redact_secrets(reason),
                "at": now,
            }
            ack_id = connection.execute(sa.insert(drift_acknowledgements).values(**values)).inserted_primary_key[0]
            written.append(Acknowledged(ack_id, feature, row.method, row.score, row.score * factor, row.batch_date))
    for ack in written:
        logger.info(
            "acknowledged %s by %s (score %.4g, up to %.4g): %s", feature, ack.method, ack.score, ack.ceiling, reason
        )
    return written


def end(engine: sa.Engine, feature: str, *, reason: str, actor: str, method: str | None = None) -> list[int]:
    """End the active acknowledgements of `feature` (of `method` only, if given) for the nights
    after the latest one monitored: nights already monitored keep what covered them (the `unack`
    row's batch_date is the first night it no longer covers).

    Returns:
        The ids of the `ack` rows ended.

    Raises:
        AcknowledgementError: no active acknowledgement of the feature (and method).
    """
    reason, actor = _required("reason", reason), _required("actor", actor, _MAX_ACTOR)
    now = utc_now()
    with locked_transaction(engine, _LOCK_KEY) as connection:
        ended = [row for row in _active(connection) if row["feature"] == feature and method in (None, row["method"])]
        if not ended:
            kind = f" by {method}" if method else ""
            raise AcknowledgementError(f"no active acknowledgement of {feature!r}{kind} (see `overnight drift acks`)")
        latest = connection.execute(sa.select(sa.func.max(drift.c.batch_date))).scalar()
        first_uncovered = latest + timedelta(days=1) if latest is not None else None
        for row in ended:
            connection.execute(
                sa.insert(drift_acknowledgements).values(
                    event="unack",
                    feature=row["feature"],
                    method=row["method"],
                    ends=row["id"],
                    batch_date=first_uncovered,
                    actor=actor,
                    reason=redact_secrets(reason),
                    at=now,
                )
            )
    return [row["id"] for row in ended]


def active(engine: sa.Engine, on: date | None = None) -> list[dict]:
    """The acknowledgements not ended that still cover `on` (default: the latest night monitored)
    or a later night, oldest first."""
    with engine.connect() as connection:
        rows = _active(connection)
        on = on or connection.execute(sa.select(sa.func.max(drift.c.batch_date))).scalar()
    if on is not None:
        rows = [row for row in rows if row["until"] is None or as_date(on) <= row["until"]]
    return rows


def _active(connection: sa.Connection) -> list[dict]:
    acks, ended = drift_acknowledgements, drift_acknowledgements.alias("ended")
    query = (
        sa.select(acks)
        .where(acks.c.event == "ack", ~sa.exists().where(ended.c.event == "unack", ended.c.ends == acks.c.id))
        .order_by(acks.c.id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def _latest_alerts(connection: sa.Connection, feature: str, method: str | None, model_version: str | None):
    """The feature's alerts (of `method`) on the latest night that had one: one row per method."""
    where = [drift.c.alert.is_(True), drift.c.feature == feature]
    if method is not None:
        where.append(drift.c.method == method)
    if model_version is not None:
        where.append(drift.c.model_version == model_version)
    latest = connection.execute(sa.select(sa.func.max(drift.c.batch_date)).where(*where)).scalar()
    if latest is None:
        return []
    query = (
        sa.select(drift.c.method, sa.func.max(drift.c.score).label("score"), drift.c.batch_date)
        .where(*where, drift.c.batch_date == latest)
        .group_by(drift.c.method, drift.c.batch_date)
        .order_by(drift.c.method)
    )
    return connection.execute(query).all()


def _required(name: str, value: str, limit: int | None = None) -> str:
    value = (value or "").strip()
    if not value:
        raise AcknowledgementError(f"an acknowledgement needs a {name}")
    if limit is not None and len(value) > limit:
        raise AcknowledgementError(f"{name} {value[:80]!r} must have at most {limit} characters")
    return value
