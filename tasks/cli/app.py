"""The `overnight` group and what every command shares: the database, one-line errors, tables."""

from __future__ import annotations

import logging
import sys

import click

from pipeline.errors import DataError
from pipeline.store import database
from tasks.config import database_url, require_config_file


class ExitOnUnavailableDatabase(click.Group):
    """A database that goes away mid-command is one line and exit 2, as at the start."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except database.DatabaseUnavailable as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)


@click.group(cls=ExitOnUnavailableDatabase)
@click.option("--verbose", "-v", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """overnight: a Luigi + Keras pipeline for one GPU workstation."""
    try:
        require_config_file()
    except DataError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


def engine():
    """The configured database, migrated; unreachable is one line and exit 2."""
    url = database_url()
    return fail_on_database_errors(lambda: database.connect(url))


def fail_on_database_errors(action):
    try:
        return action()
    except database.DatabaseUnavailable as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


def print_rows(rows: list[dict], output_format: str) -> None:
    import pandas as pd

    table = pd.DataFrame(rows)
    if output_format == "json":
        click.echo(table.to_json(orient="records", date_format="iso", indent=2))
    elif output_format == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif table.empty:
        click.echo("(none)")
    else:
        # For reading, not for parsing (csv and json keep every digit): 4 decimals, whole seconds.
        for column in table.columns:
            if pd.api.types.is_datetime64_any_dtype(table[column]):
                table[column] = table[column].dt.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(table.to_string(index=False, max_colwidth=48, float_format=lambda value: f"{value:.4f}"))
