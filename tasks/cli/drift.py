"""`overnight drift ack`, `acks` and `unack`: alerts a person has looked at stop failing the night.

Alertmanager's silences, for drift: a feature and a method, a reason, an author and an expiry
(pipeline/store/acknowledgements.py says what an acknowledgement covers).
"""

from __future__ import annotations

import click

from tasks.cli.app import echo, engine, main, print_rows
from tasks.config import drift as drift_settings

DATE = click.DateTime(formats=["%Y-%m-%d"])


@main.group()
def drift() -> None:
    """Acknowledge drift alerts a person has looked at."""


@drift.command("ack")
@click.argument("feature")
@click.option("--method", default=None, help="only this check (psi, ks, per_night, ...); default: each alerting")
@click.option("--reason", required=True, help="why the alert may pass, for the drift_acknowledgements log")
@click.option("--from", "since", type=DATE, default=None, help="the first night it covers; default: the alert's")
@click.option("--until", type=DATE, default=None, help="the last night it covers (YYYY-MM-DD); default: until unack")
@click.option("--model", "model_version", default=None, help="acknowledge this model's latest alert (default: any)")
def ack(feature: str, method: str | None, reason: str, since, until, model_version: str | None) -> None:
    """Stop FEATURE's current alerts from failing the night.

    Takes the alerts of the latest night that had one and covers that night and later ones
    (earlier ones with --from); they are still stored and shown, marked acknowledged. Another
    kind of alert on FEATURE, or a score past [drift] acknowledged_factor times the acknowledged
    one, fails the night again."""
    from pipeline.store import acknowledgements
    from pipeline.store.registry import current_actor

    written = _change(
        lambda: acknowledgements.acknowledge(
            engine(),
            feature,
            method=method,
            reason=reason,
            actor=current_actor(),
            factor=drift_settings().acknowledged_factor,
            since=since.date() if since else None,
            until=until.date() if until else None,
            model_version=model_version,
        )
    )
    horizon = f"up to the night of {until.date()}" if until else "until `overnight drift unack`"
    for row in written:
        echo(
            f"acknowledged {feature} by {row.method} (id {row.id}): score {row.score:.4g} on {row.batch_date}, "
            f"fails again above {row.ceiling:.4g}, {horizon}"
        )


@drift.command("acks")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
def acks(output_format: str) -> None:
    """Acknowledgements in force, oldest first.

    Not ended, and covering the latest night monitored or a later one."""
    from pipeline.store import acknowledgements

    columns = ("id", "feature", "method", "score", "ceiling", "batch_date", "since", "until", "actor", "reason", "at")
    rows = acknowledgements.active(engine())
    print_rows([{name: row[name] for name in columns} for row in rows], output_format)


@drift.command("unack")
@click.argument("feature")
@click.option("--method", default=None, help="only this check's acknowledgement; default: every one of FEATURE")
@click.option("--reason", required=True, help="why it ends, for the drift_acknowledgements log")
def unack(feature: str, method: str | None, reason: str) -> None:
    """End FEATURE's acknowledgements: its alerts fail the night again."""
    from pipeline.store import acknowledgements
    from pipeline.store.registry import current_actor

    ended = _change(
        lambda: acknowledgements.end(engine(), feature, method=method, reason=reason, actor=current_actor())
    )
    echo(f"ended {len(ended)} acknowledgement(s) of {feature} (id {', '.join(map(str, ended))})")


def _change(change):
    from pipeline.store.acknowledgements import AcknowledgementError

    try:
        return change()
    except AcknowledgementError as error:
        raise click.ClickException(str(error)) from None
