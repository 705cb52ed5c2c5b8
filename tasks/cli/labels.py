"""`overnight labeling-queue` and `labeling-report`: what to label, for whom, and who agrees."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tasks.cli.app import echo, engine, main, print_rows, printable_values
from tasks.config import dataset_config, labeling, labeling_settings, overnight


@main.command("labeling-queue")
@click.option("--date", "batch_date", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1), help="at most this many rows")
@click.option(
    "--annotator",
    default=None,
    help="a file for this person: their name filled in, and [labeling] recheck_share re-checks of others' labels",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV file, values as stored (default: standard output, control characters escaped)",
)
@click.option("--force", is_flag=True, help="replace an existing --output file (never a symbolic link)")
def labeling_queue(batch_date, limit: int, annotator: str | None, output: Path | None, force: bool) -> None:
    """A night's least confident predictions, to label.

    The least confident unlabeled predictions of a night, as CSV for annotators; with
    --annotator, a share of them re-checks examples other people labeled."""
    if annotator is not None and not annotator.strip():
        raise click.BadParameter("an annotator needs a name", param_hint="--annotator")
    table, rechecks = _queue(batch_date.date(), limit, annotator)
    if annotator is not None:
        # Blind: the night, the id and the person, nothing that tells a re-check (an earlier
        # night, another model, a score out of order) or leads the label (the model's guess).
        table = table[["example_id"]].copy()
        table.insert(0, "batch_date", batch_date.date().isoformat())
        table[labeling().annotator_column] = annotator
    # For the annotator to fill in; the file goes back as it is through feedback/<date>/.
    table[dataset_config().label] = ""
    if output:
        _export(output, table.to_csv(index=False), force=force)
        kinds = f": {len(table) - rechecks} new, {rechecks} re-checks of others' labels" if annotator else ""
        echo(f"{len(table)} rows to label in {output}{kinds}")
    else:
        echo(printable_values(table).to_csv(index=False), nl=False)


def _queue(night, limit: int, annotator: str | None):
    """(the queue's rows, how many of them are re-checks): unlabeled rows least confident first,
    and for an annotator the re-checks at random places among them."""
    import pandas as pd
    import sqlalchemy as sa

    from pipeline.stages import rechecks
    from pipeline.store.labels import recheck_candidates

    query = sa.text(
        "SELECT batch_date, example_id, model_version, prediction, score FROM labeling_queue "
        "WHERE batch_date = :batch_date ORDER BY score ASC, example_id LIMIT :limit"
    )
    with engine().connect() as connection:
        new = pd.read_sql(query, connection, params={"batch_date": night, "limit": limit})
    if annotator is None:
        return new, 0
    settings = labeling()
    candidates = recheck_candidates(engine(), annotator, up_to=night)
    plan = rechecks.plan(limit, settings.recheck_share, unlabeled=len(new), candidates=len(candidates))
    queue = rechecks.with_rechecks(
        new.head(plan.new), candidates, plan.rechecks, seed=settings.seed, salt=f"{annotator}\x1f{night.isoformat()}"
    )
    return queue, plan.rechecks


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


@main.command("labeling-report")
@click.option("--pairs", is_flag=True, help="every two annotators' overlap, agreement and kappa instead")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
def labeling_report(pairs: bool, output_format: str) -> None:
    """Annotators: labels, agreement, kappa, flags.

    Per annotator: labels given, agreement with the resolved labels, Cohen's kappa. Exits 1
    when an annotator is flagged: agreement below [labeling] min_agreement over at least
    min_compared labels on examples someone else labeled too."""
    from pipeline.stages.agreement import annotator_table
    from pipeline.store.labels import agreement_rows

    settings = labeling_settings()
    per_annotator, pair_table = agreement_rows(engine())
    per_annotator = annotator_table(per_annotator, pair_table, settings)
    if pairs:
        print_rows(pair_table.to_dict("records"), output_format)
        return
    print_rows(per_annotator.to_dict("records"), output_format)
    if output_format == "table" and per_annotator.empty:
        echo(f"no labels yet: they come back through feedback/<date>/, with an {labeling().annotator_column!r} column")
    flagged = per_annotator[per_annotator["flagged"]]
    for row in flagged.itertuples():
        echo(
            f"flagged: {row.annotator}: agreement {row.agreement:.2f} < {settings.min_agreement:.2f} "
            f"over {int(row.compared)} compared labels",
            err=True,
        )
    if len(flagged):
        sys.exit(1)
