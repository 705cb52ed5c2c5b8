"""`overnight`: the things that are not a pipeline step. An adapter, like the tasks."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from pipeline import database
from tasks.config import data_root, database_url


@click.group()
@click.option("--verbose", "-v", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """overnight: a Luigi + Keras pipeline for one GPU workstation."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command("example-data")
def example_data() -> None:
    """Write scikit-learn's digits: training images, nightly batches and late labels."""
    from pipeline.examples import write_examples

    root = data_root()
    written = write_examples(root)
    click.echo(f"{written.training_images} training digits in {root / 'raw' / 'digits'}")
    click.echo(f"nightly batches in {root / 'incoming'}: {', '.join(written.nights)} (the last one is shifted)")
    click.echo(f"late labels in {root / 'feedback'}: {', '.join(written.feedback_dates)}")


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Bring the database to the newest schema (tasks also do this on first use)."""
    url = database_url()
    _fail_on_database_errors(lambda: database.upgrade(url, revision))
    click.echo(f"{database.mask_url(url)} at revision {database.current_revision(url)}")


@db.command("current")
def db_current() -> None:
    """Print the database's schema revision."""
    url = database_url()
    revision = _fail_on_database_errors(lambda: database.current_revision(url))
    click.echo(f"{database.mask_url(url)} at revision {revision or '(empty)'}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def summary(as_json: bool) -> None:
    """The newest evaluated model: test scores and where its model, plots and database are."""
    from pipeline import ledger

    url = database_url()
    engine = _engine()
    evaluation = ledger.latest_run(engine, "EvaluateModel")
    training = ledger.latest_run(engine, "TrainModel")
    if evaluation is None:
        raise click.ClickException("no evaluated model yet: run `luigi --module tasks EvaluateModel`")
    metrics = json.loads((Path(evaluation["output_path"]) / "metrics.json").read_text())
    lines = {"test": metrics["splits"]["test"], "headline": metrics["headline"]["value"],
             "diagnosis": metrics["diagnosis"], "model": training and training["output_path"],
             "evaluation": evaluation["output_path"], "database": database.mask_url(url)}
    if as_json:
        click.echo(json.dumps(lines, indent=2))
        return
    scores = ", ".join(f"{name} {value:.4f}" for name, value in lines["test"].items() if name != "rows")
    click.echo(f"test ({lines['test']['rows']} rows): {scores}")
    click.echo(f"headline: {lines['headline']:.4f}  diagnosis: {lines['diagnosis']['diagnosis']} "
               f"({lines['diagnosis']['reason']})")
    click.echo(f"model:    {lines['model']}/model.keras")
    click.echo(f"plots:    {lines['evaluation']}/learning_curves.png, confusion_matrix.png")
    click.echo(f"database: {lines['database']} (tables runs, run_metrics, datasets)")


@main.command()
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
def models(output_format: str) -> None:
    """Registered model versions, newest first: stage, headline, data version."""
    from pipeline import registry

    rows = [{"version": row["version"], "stage": row["stage"], "headline": row["headline"],
             "task": row["task"], "data_version": row["data_version"], "created_at": row["created_at"],
             "path": row["path"]} for row in registry.versions(_engine())]
    _print_rows(rows, output_format)


@main.command()
@click.argument("version")
@click.option("--reason", required=True, help="why, for the model_events log")
def promote(version: str, reason: str) -> None:
    """Make VERSION the production model (overrides the registration gate)."""
    from pipeline import registry

    _registry_change(lambda engine: registry.promote(engine, version, actor=registry.current_actor(), reason=reason))
    click.echo(f"{version} is now the production model")


@main.command()
@click.option("--reason", required=True, help="why, for the model_events log")
def rollback(reason: str) -> None:
    """Go back to the model that was production before the current one."""
    from pipeline import registry

    restored = _registry_change(lambda engine: registry.rollback(engine, actor=registry.current_actor(), reason=reason))
    click.echo(f"rolled back: {restored} is the production model again")


@main.command("labeling-queue")
@click.option("--date", "batch_date", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--limit", default=100, show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV file (default: standard output)")
def labeling_queue(batch_date, limit: int, output: Path | None) -> None:
    """The least confident unlabeled predictions of a night, as CSV for annotators."""
    import pandas as pd
    import sqlalchemy as sa

    query = sa.text("SELECT batch_date, example_id, model_version, prediction, score FROM labeling_queue "
                    "WHERE batch_date = :batch_date ORDER BY score ASC, example_id LIMIT :limit")
    with _engine().connect() as connection:
        table = pd.read_sql(query, connection, params={"batch_date": batch_date.date(), "limit": limit})
    table["label"] = ""  # for the annotator to fill in; the file goes back through feedback/<date>/
    if output:
        table.to_csv(output, index=False)
        click.echo(f"{len(table)} rows to label in {output}")
    else:
        click.echo(table.to_csv(index=False), nl=False)


def _engine():
    url = database_url()
    return _fail_on_database_errors(lambda: database.connect(url))


def _registry_change(change):
    from pipeline.registry import RegistryError

    try:
        return change(_engine())
    except RegistryError as error:
        raise click.ClickException(str(error)) from None


def _print_rows(rows: list[dict], output_format: str) -> None:
    import pandas as pd

    table = pd.DataFrame(rows)
    if output_format == "json":
        click.echo(table.to_json(orient="records", date_format="iso", indent=2))
    elif output_format == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif table.empty:
        click.echo("(none)")
    else:
        click.echo(table.to_string(index=False, max_colwidth=48))


def _fail_on_database_errors(action):
    try:
        return action()
    except database.DatabaseUnavailable as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
