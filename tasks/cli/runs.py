"""`overnight summary`, `runs`, `show`, `compare` and `report`: what happened, from the shell.

The queries are pipeline/store/runs.py's, the text pipeline/rendering/run_text.py's; these
commands parse options and print.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline.artifacts.evaluation import EvaluationFolder
from pipeline.layout import VERSION_FILE
from pipeline.store import database
from tasks.cli.app import echo, echo_json, engine, main
from tasks.config import database_url, layout


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def summary(as_json: bool) -> None:
    """The newest evaluated model, in a few lines.

    Test scores against the baselines, the diagnosis, split warnings, and where its model, plots
    and database are."""
    from pipeline.common.metrics import headline_text
    from pipeline.rendering.reports.evaluation import baseline_line, near_duplicate_line
    from pipeline.store import ledger

    url = database_url()
    evaluation = ledger.latest_run(engine(), "EvaluateModel")
    if evaluation is None:
        raise click.ClickException("no evaluated model yet: run `luigi --module tasks EvaluateModel`")
    metrics = EvaluationFolder(Path(evaluation["output_path"])).metrics()
    lines = {
        "test": metrics["splits"]["test"],
        "headline": metrics["headline"]["value"],
        "headline_definition": metrics["headline"].get("definition", {}),
        "headline_rule": metrics["headline"].get("rule"),  # None in metrics.json older than the rule
        "diagnosis": metrics["diagnosis"],
        "baselines": metrics.get("baselines", {}),
        "split": metrics.get("split", {"warnings": [], "near_duplicates": None}),
        "model": _evaluated_model(Path(evaluation["output_path"])),
        "evaluation": evaluation["output_path"],
        "database": database.mask_url(url),
    }
    if as_json:
        echo_json(json.dumps(lines, indent=2))
        return
    scores = ", ".join(f"{name} {value:.4f}" for name, value in lines["test"].items() if name != "rows")
    echo(f"test ({lines['test']['rows']} rows): {scores}")
    chosen = f", {lines['headline_rule']}" if lines["headline_rule"] else ""
    echo(
        f"headline: {lines['headline']:.4f} ({headline_text(lines['headline_definition'])}{chosen})  "
        f"diagnosis: {lines['diagnosis']['diagnosis']} ({lines['diagnosis']['reason']})"
    )
    for name, baseline in lines["baselines"].items():
        echo(f"baseline: {baseline_line(name, baseline, lines['headline'])}")
    for warning in lines["split"]["warnings"]:
        echo(f"warning:  split: {warning}")
    if lines["split"].get("near_duplicates"):
        echo(f"split:    {near_duplicate_line(lines['split']['near_duplicates'])}")
    echo(f"model:    {lines['model']}/model.keras")
    plots = ", ".join(sorted(path.name for path in Path(lines["evaluation"]).glob("*.png")))
    echo(f"report:   {lines['evaluation']}/report.html (plots: {plots})")
    echo(f"database: {lines['database']} (`overnight runs`; SQL examples in docs/database.md)")


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
    """Recent runs, newest first.

    Id, task, night (of a nightly task), start (UTC), status, duration, headline (a training
    run's validation score, marked `v`), commit (`+`: uncommitted changes), cost; csv and json
    add the versions, the data version and the rest."""
    from pipeline.rendering import run_text, text
    from pipeline.store import runs

    rows = runs.list_runs(engine(), limit=limit, task=task, status=status)
    if output_format == "json":
        echo_json(text.to_json(rows))
    elif output_format == "csv":
        echo(text.to_csv(rows, runs.LISTED_COLUMNS), nl=False)
    else:
        echo(run_text.format_runs_table(rows))


@main.command("show")
@click.argument("run")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
def runs_show(run: str, output_format: str) -> None:
    """Everything recorded about one run.

    RUN is its id, or the first characters of it: parameters, data version, commit, packages,
    hardware, cost, files and metrics."""
    from pipeline.rendering import run_text, text

    details = _recorded_run(engine(), run)
    details["output_gone"] = bool(details["output_path"]) and not Path(details["output_path"]).exists()
    if output_format == "json":
        echo_json(text.to_json(details))
    else:
        echo(run_text.format_run(details))


@main.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
def runs_compare(run_a: str, run_b: str, output_format: str) -> None:
    """Two runs side by side: parameters and metrics.

    Parameter differences and metric deltas (B - A), and data versions and commits when they
    differ; ids or their first characters."""
    from pipeline.rendering import run_text, text
    from pipeline.store import runs

    database = engine()
    comparison = runs.compare_runs(_recorded_run(database, run_a), _recorded_run(database, run_b))
    if output_format == "json":
        echo_json(text.to_json(comparison))
    elif output_format == "csv":
        echo(
            text.to_csv(runs.comparison_rows(comparison), ("kind", "split", "slice", "name", "a", "b", "delta")),
            nl=False,
        )
    else:
        echo(run_text.format_comparison(comparison))


def _recorded_run(engine, run: str) -> dict:
    """run_details of the one run RUN names; an unknown or ambiguous id is a one-line error."""
    from pipeline.store import runs

    try:
        return runs.run_details(engine, runs.find_run_id(engine, run))
    except runs.RunNotFound as error:
        raise click.ClickException(str(error)) from None


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
    """Print the path of a run's or a night's report.

    RUN_ID's report.html, or with --date D, night D's nightly report.

    RUN_ID is an EvaluateModel run (its id or the first characters of it); a TrainModel run
    stands for the newest succeeded evaluation of its model.
    """
    if (run_id is None) == (batch_date is None):
        raise click.UsageError("give a RUN_ID or --date D, not both")
    if batch_date is not None:
        night = layout().night(batch_date.date())
        found = sorted(night.glob("report-*.html"), key=lambda path: path.stat().st_mtime)
        if not found:
            raise click.ClickException(
                f"no nightly report for {night.name} under {night.parent}; run `scripts/nightly.sh {night.name}`"
            )
        echo(str(found[-1]))
        return
    path = EvaluationFolder(Path(_evaluation_run_for_report(engine(), run_id)["output_path"])).report_path
    if not path.is_file():
        raise click.ClickException(
            f"{path} does not exist: that evaluation predates reports or was removed; "
            "rerun `luigi --module tasks EvaluateModel`"
        )
    echo(str(path))


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
                made_of = Path(evaluation.output_path or "") / VERSION_FILE
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


def _evaluated_model(evaluation_dir: Path) -> str:
    """The training folder an evaluation scored, from its version.json."""
    made_of = json.loads((evaluation_dir / VERSION_FILE).read_text())
    return str(layout().output("training", made_of["upstream"]["TrainModel"]))
