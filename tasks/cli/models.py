"""`overnight models`, `promote`, `rollback` and `labeling-queue`: the registry and the annotators."""

from __future__ import annotations

from pathlib import Path

import click

from tasks.cli.app import echo, engine, main, print_rows, printable_values
from tasks.config import dataset_config, overnight


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


@main.command("labeling-queue")
@click.option("--date", "batch_date", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1), help="at most this many rows")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV file, values as stored (default: standard output, control characters escaped)",
)
@click.option("--force", is_flag=True, help="replace an existing --output file (never a symbolic link)")
def labeling_queue(batch_date, limit: int, output: Path | None, force: bool) -> None:
    """A night's least confident predictions, to label.

    The least confident unlabeled predictions of a night, as CSV for annotators."""
    import pandas as pd
    import sqlalchemy as sa

    query = sa.text(
        "SELECT batch_date, example_id, model_version, prediction, score FROM labeling_queue "
        "WHERE batch_date = :batch_date ORDER BY score ASC, example_id LIMIT :limit"
    )
    with engine().connect() as connection:
        table = pd.read_sql(query, connection, params={"batch_date": batch_date.date(), "limit": limit})
    # For the annotator to fill in; the file goes back as it is through feedback/<date>/.
    table[dataset_config().label] = ""
    if output:
        _export(output, table.to_csv(index=False), force=force)
        echo(f"{len(table)} rows to label in {output}")
    else:
        echo(printable_values(table).to_csv(index=False), nl=False)


def _export(output: Path, text: str, *, force: bool) -> None:
    """The queue's CSV, values verbatim: ids must match when the labels come back."""
    from pipeline.common.files import write_file

    try:
        write_file(output, text.encode(), private=overnight().private, replace=force)
    except FileExistsError:
        raise click.ClickException(f"{output} exists: give --force to replace it") from None
    except OSError as error:  # a link, a folder in the way, no permission: the OS's words, one line
        where = f"{error.filename}: " if error.filename and str(error.filename) != str(output) else ""
        raise click.ClickException(f"cannot write {output}: {where}{error.strerror}") from None


def _registry_change(change):
    from pipeline.store.registry import RegistryError

    try:
        return change(engine())
    except RegistryError as error:
        raise click.ClickException(str(error)) from None
