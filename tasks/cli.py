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
    engine = _fail_on_database_errors(lambda: database.connect(url))
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


def _fail_on_database_errors(action):
    try:
        return action()
    except database.DatabaseUnavailable as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
