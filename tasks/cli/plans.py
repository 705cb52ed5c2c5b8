"""`overnight plan` and `reproduce`: what would run and why; a training run again from its records."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tasks.cli.app import echo, engine, main


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("task_and_parameters", nargs=-1, type=click.UNPROCESSED, required=True)
def plan(task_and_parameters: tuple[str, ...]) -> None:
    """The tasks that would run, and why; runs nothing.

    For TASK [--param value ...], upstream first, each with its reason: no output yet, a changed
    parameter (old and new values), new data, a changed [dataset] setting, changed stage code
    (the files that changed), an upstream rerun.

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
        echo(f"nothing to run: {root} is complete")
    for item in planned:
        echo(f"{item.task}\n    {item.reason}")


@main.command()
@click.argument("run")
@click.option(
    "--scratch",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="folder for the rebuilt chain (default: a new temporary folder)",
)
def reproduce(run: str, scratch: Path | None) -> None:
    """Retrain a TrainModel run and compare metrics.

    RUN is retrained from its recorded parameters and data into a scratch folder, and every
    recorded metric compared; exits 1 when one differs. Refuses when the raw data changed since."""
    from pipeline.errors import DataError
    from tasks.reproduction import reproduce as reproduce_run

    try:
        result = reproduce_run(engine(), run, scratch=scratch)
    except DataError as error:
        raise click.ClickException(str(error)) from None
    echo(
        f"run {result.run_id}: version {result.original_version}, reproduced as "
        f"{result.reproduced_version} in {result.scratch}"
    )
    if result.identical:
        echo(f"identical: all {result.compared} recorded metrics match exactly")
        return
    echo(
        f"different: {len(result.mismatches)} of {result.compared} metrics differ"
        " (train with --deterministic for exact reproduction)"
    )
    for line in result.mismatches[:20]:
        echo(f"  {line}")
    sys.exit(1)
