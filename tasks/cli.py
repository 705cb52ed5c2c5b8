"""`overnight`: the things that are not a pipeline step. An adapter, like the tasks."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from pipeline.store import database
from tasks.config import data_root, database_url, dataset_config


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
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


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
    from pipeline.store import ledger

    url = database_url()
    engine = _engine()
    evaluation = ledger.latest_run(engine, "EvaluateModel")
    if evaluation is None:
        raise click.ClickException("no evaluated model yet: run `luigi --module tasks EvaluateModel`")
    metrics = json.loads((Path(evaluation["output_path"]) / "metrics.json").read_text())
    lines = {
        "test": metrics["splits"]["test"],
        "headline": metrics["headline"]["value"],
        "diagnosis": metrics["diagnosis"],
        "model": _evaluated_model(Path(evaluation["output_path"])),
        "evaluation": evaluation["output_path"],
        "database": database.mask_url(url),
    }
    if as_json:
        click.echo(json.dumps(lines, indent=2))
        return
    scores = ", ".join(f"{name} {value:.4f}" for name, value in lines["test"].items() if name != "rows")
    click.echo(f"test ({lines['test']['rows']} rows): {scores}")
    click.echo(
        f"headline: {lines['headline']:.4f}  diagnosis: {lines['diagnosis']['diagnosis']} "
        f"({lines['diagnosis']['reason']})"
    )
    click.echo(f"model:    {lines['model']}/model.keras")
    click.echo(f"report:   {lines['evaluation']}/report.html (plots: learning_curves.png, confusion_matrix.png)")
    click.echo(f"database: {lines['database']} (`overnight runs`; SQL examples in README.md)")


# --- Runs from the shell: `runs`, `show`, `compare` (store/runs.py queries, rendering/run_text.py prints) ---


@main.command("runs")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="at most this many runs")
@click.option("--task", default=None, help="only runs of this task, e.g. TrainModel")
@click.option(
    "--status",
    type=click.Choice(["running", "succeeded", "failed", "abandoned"]),
    default=None,
    help="only runs with this status",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="csv and json print every field in full",
)
def runs_list(limit: int, task: str | None, status: str | None, output_format: str) -> None:
    """Recent runs, newest first: id, task, version, status, duration, headline, data, commit, cost."""
    from pipeline.rendering import run_text
    from pipeline.store import runs

    rows = runs.list_runs(_engine(), limit=limit, task=task, status=status)
    if output_format == "json":
        click.echo(run_text.to_json(rows))
    elif output_format == "csv":
        click.echo(run_text.to_csv(rows, runs.LISTED_COLUMNS), nl=False)
    else:
        click.echo(run_text.format_runs_table(rows))


@main.command("show")
@click.argument("run")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def runs_show(run: str, output_format: str) -> None:
    """Everything recorded about RUN (its id, or the first characters of it)."""
    from pipeline.rendering import run_text

    details = _recorded_run(_engine(), run)
    click.echo(run_text.to_json(details) if output_format == "json" else run_text.format_run(details))


@main.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
def runs_compare(run_a: str, run_b: str, output_format: str) -> None:
    """Parameter differences and metric deltas (B - A) of two runs, ids or their first characters."""
    from pipeline.rendering import run_text
    from pipeline.store import runs

    engine = _engine()
    comparison = runs.compare_runs(_recorded_run(engine, run_a), _recorded_run(engine, run_b))
    if output_format == "json":
        click.echo(run_text.to_json(comparison))
    elif output_format == "csv":
        click.echo(
            run_text.to_csv(runs.comparison_rows(comparison), ("kind", "split", "slice", "name", "a", "b", "delta")),
            nl=False,
        )
    else:
        click.echo(run_text.format_comparison(comparison))


def _recorded_run(engine, run: str) -> dict:
    """run_details of the one run RUN names; an unknown or ambiguous id is a one-line error."""
    from pipeline.store import runs

    try:
        return runs.run_details(engine, runs.find_run_id(engine, run))
    except runs.RunNotFound as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
def models(output_format: str) -> None:
    """Registered model versions, newest first: stage, headline, data version."""
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
        for row in registry.versions(_engine())
    ]
    _print_rows(rows, output_format)


@main.command()
@click.argument("version")
@click.option("--reason", required=True, help="why, for the model_events log")
def promote(version: str, reason: str) -> None:
    """Make VERSION the production model (overrides the registration gate)."""
    from pipeline.store import registry

    _registry_change(lambda engine: registry.promote(engine, version, actor=registry.current_actor(), reason=reason))
    click.echo(f"{version} is now the production model")


@main.command()
@click.option("--reason", required=True, help="why, for the model_events log")
def rollback(reason: str) -> None:
    """Go back to the model that was production before the current one."""
    from pipeline.store import registry

    restored = _registry_change(lambda engine: registry.rollback(engine, actor=registry.current_actor(), reason=reason))
    click.echo(f"rolled back: {restored} is the production model again")


@main.command("labeling-queue")
@click.option("--date", "batch_date", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--limit", default=100, show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV file (default: standard output)",
)
def labeling_queue(batch_date, limit: int, output: Path | None) -> None:
    """The least confident unlabeled predictions of a night, as CSV for annotators."""
    import pandas as pd
    import sqlalchemy as sa

    query = sa.text(
        "SELECT batch_date, example_id, model_version, prediction, score FROM labeling_queue "
        "WHERE batch_date = :batch_date ORDER BY score ASC, example_id LIMIT :limit"
    )
    with _engine().connect() as connection:
        table = pd.read_sql(query, connection, params={"batch_date": batch_date.date(), "limit": limit})
    # For the annotator to fill in; the file goes back as it is through feedback/<date>/.
    table[dataset_config().label] = ""
    if output:
        table.to_csv(output, index=False)
        click.echo(f"{len(table)} rows to label in {output}")
    else:
        click.echo(table.to_csv(index=False), nl=False)


@main.command("report")
@click.argument("run_id", required=False)
@click.option(
    "--date",
    "batch_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="print the nightly report of this night instead",
)
def report(run_id: str | None, batch_date) -> None:
    """Print the path of RUN_ID's report.html, or with --date D, of night D's nightly report.

    RUN_ID is an EvaluateModel run (its id or the first characters of it); a TrainModel run
    stands for the newest succeeded evaluation of its model.
    """
    if (run_id is None) == (batch_date is None):
        raise click.UsageError("give a RUN_ID or --date D, not both")
    if batch_date is not None:
        night = batch_date.date().isoformat()
        found = sorted(
            (data_root() / "09_monitoring" / night).glob("report-*.html"), key=lambda path: path.stat().st_mtime
        )
        if not found:
            raise click.ClickException(
                f"no nightly report for {night} under {data_root() / '09_monitoring'}; run `scripts/nightly.sh {night}`"
            )
        click.echo(str(found[-1]))
        return
    path = Path(_evaluation_run_for_report(_engine(), run_id)["output_path"]) / "report.html"
    if not path.is_file():
        raise click.ClickException(
            f"{path} does not exist: that evaluation predates reports or was removed; "
            "rerun `luigi --module tasks EvaluateModel`"
        )
    click.echo(str(path))


def _evaluation_run_for_report(engine, run_id: str) -> dict:
    """The EvaluateModel run RUN_ID names; a TrainModel run leads to its model's newest evaluation."""
    import sqlalchemy as sa

    from pipeline.store.tables import runs as runs_table

    columns = (
        runs_table.c.run_id,
        runs_table.c.task,
        runs_table.c.status,
        runs_table.c.version,
        runs_table.c.output_path,
    )
    with engine.connect() as connection:
        matches = [
            dict(row._mapping)
            for row in connection.execute(
                sa.select(*columns).where(runs_table.c.run_id.startswith(run_id.strip(), autoescape=True)).limit(2)
            )
        ]
        if len(matches) != 1 or not run_id.strip():
            problem = "matches several runs: give more characters" if matches else "matches no run"
            raise click.ClickException(f"run id {run_id!r} {problem} (`overnight runs` lists them)")
        run = matches[0]
        if run["task"] == "TrainModel":
            evaluations = connection.execute(
                sa.select(*columns)
                .where(runs_table.c.task == "EvaluateModel", runs_table.c.status == "succeeded")
                .order_by(runs_table.c.started_at.desc())
            ).all()
            for evaluation in evaluations:
                made_of = Path(evaluation.output_path or "") / "version.json"
                upstream = json.loads(made_of.read_text()).get("upstream", {}) if made_of.is_file() else {}
                if upstream.get("TrainModel") == run["version"]:
                    return dict(evaluation._mapping)
            raise click.ClickException(
                f"TrainModel run {run['run_id']} has no succeeded evaluation: "
                "run `luigi --module tasks EvaluateModel` with the same parameters"
            )
    if run["task"] != "EvaluateModel":
        raise click.ClickException(
            f"run {run['run_id']} is a run of {run['task']}: reports belong to EvaluateModel "
            "runs (or give a TrainModel run); for a night use `overnight report --date D`"
        )
    if run["status"] != "succeeded":
        raise click.ClickException(f"EvaluateModel run {run['run_id']} {run['status']}: it wrote no report")
    return run


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("task_and_parameters", nargs=-1, type=click.UNPROCESSED, required=True)
def plan(task_and_parameters: tuple[str, ...]) -> None:
    """The tasks that would run for TASK [--param value ...], and why; runs nothing.

    Parameters are Luigi's, as on its command line: `overnight plan TrainModel --epochs 3`.
    """
    from luigi.cmdline_parser import CmdlineParser

    import tasks  # noqa: F401 - registers the task classes with Luigi
    from tasks.planning import plan as plan_tasks

    try:
        with CmdlineParser.global_instance(list(task_and_parameters)) as parser:
            root = parser.get_task_obj()
            planned = plan_tasks(root)
    except SystemExit as exit_:  # argparse already printed what was wrong
        raise click.exceptions.Exit(exit_.code or 2) from None
    if not planned:
        click.echo(f"nothing to run: {root} is complete")
    for item in planned:
        click.echo(f"{item.task}\n    {item.reason}")


@main.command()
@click.argument("run")
@click.option(
    "--scratch",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="folder for the rebuilt chain (default: a new temporary folder)",
)
def reproduce(run: str, scratch: Path | None) -> None:
    """Retrain TrainModel run RUN from its recorded parameters and data; compare the metrics."""
    from pipeline.errors import DataError
    from tasks.reproduction import reproduce as reproduce_run

    try:
        result = reproduce_run(_engine(), run, scratch=scratch)
    except DataError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"run {result.run_id}: version {result.original_version}, reproduced as "
        f"{result.reproduced_version} in {result.scratch}"
    )
    if result.identical:
        click.echo(f"identical: all {result.compared} recorded metrics match exactly")
        return
    click.echo(
        f"different: {len(result.mismatches)} of {result.compared} metrics differ"
        " (train with --deterministic for exact reproduction)"
    )
    for line in result.mismatches[:20]:
        click.echo(f"  {line}")
    sys.exit(1)


def _evaluated_model(evaluation_dir: Path) -> str:
    """The training folder an evaluation scored, from its version.json."""
    from tasks.base import VERSION_FILE
    from tasks.training import TrainModel

    made_of = json.loads((evaluation_dir / VERSION_FILE).read_text())
    return str(data_root() / TrainModel.folder / made_of["upstream"]["TrainModel"])


@main.command()
def doctor() -> None:
    """What this machine offers: TensorFlow, Keras, GPUs, mixed precision, the database."""
    import os

    from pipeline.common import environment

    url = database_url()
    click.echo(f"python      {environment.hardware()['python']} on {environment.hardware()['platform']}")
    listed = environment.hardware()["gpus"]  # nvidia-smi: no CUDA initialised to learn this
    click.echo(f"nvidia-smi  {', '.join(listed) if listed else 'no NVIDIA GPU listed'}")
    # CUDA's start-up errors are worth seeing only where there is a card to start.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if listed else "3")
    import keras
    import tensorflow as tf

    click.echo(f"tensorflow  {tf.__version__} (CUDA build: {tf.test.is_built_with_cuda()})")
    click.echo(f"keras       {keras.__version__}")
    visible = tf.config.list_physical_devices("GPU")
    click.echo(f"visible     {len(visible)} GPU(s) to TensorFlow" + (": " if visible else ""))
    for device in visible:
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        # float16 tensor cores from compute capability 7.0 (Volta) on.
        mixed = "yes" if capability and capability >= (7, 0) else "no (needs compute capability 7.0)"
        click.echo(
            f"            {device.name} {details.get('device_name', '')} capability {capability}; "
            f"mixed precision: {mixed}"
        )
    if not visible:
        click.echo("            mixed precision and XLA speed-ups need a GPU; training runs on the CPU")
    click.echo(f"database    {database.mask_url(url)}")
    missing = database.missing_sqlite_file(url)
    if missing is not None:  # opening it would create it: the doctor changes nothing
        click.echo(f"            not created yet: the first task (or `overnight db upgrade`) creates {missing}")
        return
    try:
        revision = database.current_revision(url)  # reads only: the doctor changes nothing
        click.echo(
            f"            reachable, schema revision {revision or '(empty)'}; "
            f"newest {database.head_revision()} (tasks and `overnight db upgrade` migrate)"
        )
    except database.DatabaseUnavailable as error:
        click.echo(f"            NOT reachable: {error}")
        sys.exit(2)


def _engine():
    url = database_url()
    return _fail_on_database_errors(lambda: database.connect(url))


def _registry_change(change):
    from pipeline.store.registry import RegistryError

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
