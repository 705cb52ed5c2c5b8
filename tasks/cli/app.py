"""The `overnight` group and what every command shares: the database, one-line errors, tables.

Everything a command prints goes through `echo`, which escapes control characters (a hostile id's
ESC sequences, bidi overrides) so that values reach a person's terminal as text; error messages
and log lines are escaped the same way. Files a command writes keep values as they are.
"""

from __future__ import annotations

import logging
import sys

import click

from pipeline.common.formatting import printable, printable_json
from pipeline.errors import DataError
from pipeline.store import database
from tasks.config import database_url, require_config_file


class ExitOnUnavailableDatabase(click.Group):
    """A database that goes away mid-command is one line and exit 2, as at the start; a click
    error (a usage error, a one-line ClickException) has its message escaped before click prints it."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except database.DatabaseUnavailable as error:
            echo(f"error: {error}", err=True)
            sys.exit(2)
        except click.ClickException as error:  # it may quote a value: a run id, a file name
            error.message = printable(error.message, keep_newlines=True)
            raise


class PrintableLogLines(logging.Formatter):
    """Log lines reach a person's terminal too: control characters escaped, line breaks kept."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep_newlines=True)


@click.group(cls=ExitOnUnavailableDatabase)
@click.option("--verbose", "-v", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """overnight: a Luigi + Keras pipeline for one GPU workstation."""
    try:
        require_config_file()
    except DataError as error:
        echo(f"error: {error}", err=True)
        sys.exit(2)
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableLogLines("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


def engine():
    """The configured database, migrated; unreachable is one line and exit 2."""
    url = database_url()
    return fail_on_database_errors(lambda: database.connect(url))


def fail_on_database_errors(action):
    try:
        return action()
    except database.DatabaseUnavailable as error:
        echo(f"error: {error}", err=True)
        sys.exit(2)


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """click.echo for a person: control characters escaped, line breaks kept (they are the layout).

    The last guard: tables escape their cells already (a value's newline must not break a row);
    this catches what reaches a message some other way (a file name, an error's text).
    """
    click.echo(printable(text, keep_newlines=True), err=err, nl=nl)


def echo_json(document: str) -> None:
    """Serialized JSON, still valid: a control character an encoder left raw becomes \\uXXXX."""
    echo(printable_json(document))


def printable_values(table):
    """A copy of a DataFrame whose text values are escaped for printing; numbers untouched."""
    import pandas as pd

    table = table.copy()
    for column in table.columns:
        if pd.api.types.is_object_dtype(table[column]) or pd.api.types.is_string_dtype(table[column]):
            table[column] = table[column].map(lambda value: printable(value) if isinstance(value, str) else value)
    return table


def print_rows(rows: list[dict], output_format: str) -> None:
    import pandas as pd

    table = pd.DataFrame(rows)
    if output_format == "json":
        echo_json(table.to_json(orient="records", date_format="iso", indent=2))
        return
    table = printable_values(table)  # one line per row, whatever a value holds
    if output_format == "csv":
        echo(table.to_csv(index=False), nl=False)
    elif table.empty:
        echo("(none)")
    else:
        # For reading, not for parsing (csv and json keep every digit): 4 decimals, whole seconds.
        for column in table.columns:
            if pd.api.types.is_datetime64_any_dtype(table[column]):
                table[column] = table[column].dt.strftime("%Y-%m-%d %H:%M:%S")
        echo(table.to_string(index=False, max_colwidth=48, float_format=lambda value: f"{value:.4f}"))
