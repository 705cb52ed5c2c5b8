"""`overnight models`, `promote` and `rollback`: the registry."""

from __future__ import annotations

import click

from tasks.cli.app import echo, engine, main, print_rows


@main.command()
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
def models(output_format: str) -> None:
    """Registered model versions, newest first.

    Stage, headline, data version."""
    from pipeline.store import registry

    rows = [
        {
            "version": row["version"],
            "stage": row["stage"],
            "headline": row["headline"],
            "task": row["task"],
            "data_version": row["data_version"],
            "created_at": row["created_at"],
            "path": row["path"],
        }
        for row in registry.versions(engine())
    ]
    print_rows(rows, output_format)


@main.command()
@click.argument("version")
@click.option("--reason", required=True, help="why, for the model_events log")
def promote(version: str, reason: str) -> None:
    """Make VERSION the production model.

    Overrides the registration gate."""
    from pipeline.store import registry

    _registry_change(lambda engine: registry.promote(engine, version, actor=registry.current_actor(), reason=reason))
    echo(f"{version} is now the production model")


@main.command()
@click.option("--reason", required=True, help="why, for the model_events log")
def rollback(reason: str) -> None:
    """Go back to the previous production model.

    The one that was production before the current one."""
    from pipeline.store import registry

    restored = _registry_change(lambda engine: registry.rollback(engine, actor=registry.current_actor(), reason=reason))
    echo(f"rolled back: {restored} is the production model again")


def _registry_change(change):
    from pipeline.store.registry import RegistryError

    try:
        return change(engine())
    except RegistryError as error:
        raise click.ClickException(str(error)) from None
