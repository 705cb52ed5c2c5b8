"""`overnight du` and `overnight gc`: what the data root holds, and removing what nothing needs.

The rules are pipeline/artifacts/collection.py's; here the registry and the runs ledger say what
refers to each output, and gc removes under the output locks the tasks take.
"""

from __future__ import annotations

import datetime
import shutil
import time
from pathlib import Path

import click

from pipeline.layout import STAGE_FOLDERS
from tasks.cli.app import echo, engine, main, print_rows
from tasks.config import gc as gc_settings
from tasks.config import layout

SCRATCH_AGE_S = 24 * 3600  # an interrupted run's scratch is collected after a day


def _verdicts():
    """Every output's verdict, and the data root's layout."""
    from pipeline.artifacts.collection import verdicts
    from pipeline.artifacts.inventory import outputs
    from tasks.recording import settle_stale_runs

    settings, where, database = gc_settings(), layout(), engine()
    settle_stale_runs()  # a run whose process died is no run in progress
    return verdicts(outputs(where), _roots(database, settings)), where


def _roots(database, settings):
    import sqlalchemy as sa

    from pipeline.artifacts.collection import Roots
    from pipeline.store import registry
    from pipeline.store.tables import runs

    models, evaluations = {}, {}
    previous = registry.previous_production(database)
    for row in registry.versions(database):
        if row["stage"] == "archived" and row["version"] != previous:
            continue
        why = "previous production model" if row["version"] == previous else f"{row['stage']} model {row['version']}"
        models[row["version"]] = why
        if row["evaluation_path"]:
            evaluations[Path(row["evaluation_path"])] = why
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=settings.keep_days)
    query = sa.select(runs.c.output_path, runs.c.task, runs.c.started_at).where(
        runs.c.started_at >= since, runs.c.output_path.is_not(None)
    )
    in_progress = sa.select(runs.c.task, runs.c.run_id).where(runs.c.status == "running")
    with database.connect() as connection:
        recent = {
            Path(row.output_path): f"{row.task} ran within {settings.keep_days} days"
            for row in connection.execute(query)
        }
        running = {
            row.task: f"a {row.task} run is in progress ({row.run_id[:8]})" for row in connection.execute(in_progress)
        }
    return Roots(
        models=models, evaluations=evaluations, recent=recent, keep_nights=settings.keep_nights, running=running
    )


@main.command("du")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
def du(output_format: str) -> None:
    """Disk used per stage and version, and what keeps each.

    Newest first within each stage; `kept by` is empty for what `overnight gc` would remove."""
    from pipeline.common.formatting import format_bytes

    found, _ = _verdicts()
    rows = [
        {
            "stage": verdict.output.stage,
            "output": str(verdict.output.path.relative_to(layout().root)),
            "bytes": verdict.output.bytes if output_format != "table" else format_bytes(verdict.output.bytes),
            "modified": datetime.datetime.fromtimestamp(verdict.output.modified, datetime.UTC).replace(tzinfo=None),
            "kept by": verdict.kept_by,
        }
        for verdict in sorted(found, key=lambda v: (list(STAGE_FOLDERS).index(v.output.stage), -v.output.modified))
    ]
    print_rows(rows, output_format)
    if output_format == "table":
        totals = {}
        for verdict in found:
            totals[verdict.output.stage] = totals.get(verdict.output.stage, 0) + verdict.output.bytes
        echo("")
        for stage, total in totals.items():
            echo(f"{stage:<11} {format_bytes(total)}")


@main.command("gc")
@click.option("--apply", "apply_", is_flag=True, help="remove them (without it: list only)")
def gc(apply_: bool) -> None:
    """Remove outputs nothing refers to; a dry run by default.

    Kept: the production and previous production models and every registered one that is not
    archived, each with its whole upstream chain, the last [gc] keep_nights nights (and days of
    images answered online) and what runs of the last [gc] keep_days days made. Database rows
    are never deleted; a collected output is rebuilt by its task command. A folder a running
    task holds is left alone."""
    from pipeline.artifacts.inventory import online_image_days, scratch
    from pipeline.common.formatting import format_bytes

    found, where = _verdicts()
    now = time.time()
    doomed = [
        (verdict.output.path, str(verdict.output.path), verdict.output.bytes)
        for verdict in found
        if verdict.collectable
    ]
    doomed += [(item.path, item.location, item.bytes) for item in scratch(where) if now - item.modified > SCRATCH_AGE_S]
    # Images answered online serve their day's drift check: kept as long as the nights are.
    old_days = online_image_days(where)[max(gc_settings().keep_nights, 1) :]
    doomed += [(item.path, item.location, item.bytes) for item in old_days]
    freed, skipped = 0, []
    for path, location, size in doomed:
        relative = path.relative_to(where.root)
        if not apply_:
            echo(f"would remove {relative} ({format_bytes(size)})")
            freed += size
        elif _remove(path, location, where):
            echo(f"removed {relative} ({format_bytes(size)})")
            freed += size
        else:
            skipped.append(relative)
            echo(f"left {relative}: a running task holds it")
    verb = "freed" if apply_ else "would free"
    echo(
        f"{verb} {format_bytes(freed)} in {len(doomed) - len(skipped)} folder(s)"
        + ("" if apply_ else "; --apply removes them")
    )


def _remove(path: Path, location: str, where) -> bool:
    """Remove `path` under the lock and lease of the output it belongs to; False when a task
    holds either (on this host, or on another through the database's lease)."""
    from pipeline.store import leases
    from tasks.base.outputs import output_lock
    from tasks.config import overnight

    owner = "overnight gc"
    with (
        output_lock(where.locks(), location, owner=owner, wait=False, private=overnight().private) as unlocked,
        leases.output_lease(engine(), location, owner=owner, wait=False) as unleased,
    ):
        free = bool(unlocked and unleased)
        if free:
            shutil.rmtree(path)
        return free
