"""Runs from the shell: list, look up, show and compare recorded runs.

Queries read the ledger (``runs``, ``run_metrics``, ``datasets``) with SQLAlchemy Core and bound
parameters only; pipeline/rendering/run_text.py turns their results into text, so `overnight runs`, `show`
and `compare` (tasks/cli.py) only parse options and print. Times are UTC, ISO 8601.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipeline.common.metrics import METRIC_SPLITS, lower_is_better
from pipeline.store.tables import datasets, run_metrics, runs

SHORT_ID = 8  # characters of a run id, version or data version in tables
MAX_FILES = 1000  # files listed for a run's output (a TensorBoard folder can hold many)

LISTED_COLUMNS = (
    "run_id",
    "task",
    "version",
    "status",
    "started_at",
    "finished_at",
    "duration_s",
    "night",
    "headline",
    "headline_split",
    "data_version",
    "git_commit",
    "git_dirty",
    "cpu_s",
    "peak_memory_mb",
    "gpu_name",
    "gpu_s",
    "cost",
)
COMPUTED_COLUMNS = ("night", "headline", "headline_split")
VALIDATION_HEADLINES = ("accuracy", "r2")  # the default headline of each task, on validation
RUN_FIELDS = (
    "run_id",
    "task",
    "status",
    "version",
    "params",
    "data_version",
    "git_commit",
    "git_dirty",
    "output_path",
    "host",
    "pid",
    "started_at",
    "finished_at",
    "duration_s",
    "cpu_s",
    "peak_memory_mb",
    "gpu_name",
    "gpu_s",
    "cost",
    "rows_in",
    "rows_rejected",
    "error",
    "hardware",
    "packages",
)


class RunNotFound(LookupError):
    """No run, or more than one, matches what was asked for; the message is one line."""


def list_runs(
    engine: sa.Engine, *, limit: int = 20, task: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """The newest runs first, each with its headline score (test split, whole split) or None.

    Args:
        limit: at most this many runs.
        task: only runs of this task family (exact name, e.g. ``TrainModel``).
        status: only runs with this status (running, succeeded, failed, abandoned).

    Returns:
        One dict per run with the keys in ``LISTED_COLUMNS``.
    """
    if limit < 1:
        raise ValueError(f"limit must be 1 or more, not {limit}")
    columns = [runs.c[name] for name in LISTED_COLUMNS if name not in COMPUTED_COLUMNS]
    query = sa.select(
        *columns,
        runs.c.params,
        _headline("test", ("headline",)).label("headline"),
        # A training run has no test split yet: its validation score of the default headline.
        _headline("validation", VALIDATION_HEADLINES).label("validation_headline"),
    )
    if task is not None:
        query = query.where(runs.c.task == task)
    if status is not None:
        query = query.where(runs.c.status == status)
    query = query.order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [_listed(row._mapping) for row in rows]


def _headline(split: str, names: tuple[str, ...]):
    """A run's first-recorded figure among `names` on `split` (whole split, the model's own).
    Correlated and limited: evaluated for the listed runs only, through ix_run_metrics_run_id."""
    return (
        sa.select(run_metrics.c.value)
        .where(
            run_metrics.c.run_id == runs.c.run_id,
            run_metrics.c.name.in_(names),
            run_metrics.c.split == split,
            run_metrics.c.slice == "",
            run_metrics.c.epoch.is_(None),
            run_metrics.c.baseline == "",
        )
        .order_by(run_metrics.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _listed(row) -> dict[str, Any]:
    listed = {name: row[name] for name in LISTED_COLUMNS if name not in COMPUTED_COLUMNS}
    params = row["params"]
    if isinstance(params, str):
        params = json.loads(params)
    listed["night"] = (params or {}).get("date")  # the nightly tasks' date parameter
    test, validation = row["headline"], row["validation_headline"]
    listed["headline"] = test if test is not None else validation
    listed["headline_split"] = "test" if test is not None else ("validation" if validation is not None else None)
    return {name: listed[name] for name in LISTED_COLUMNS}


def find_run_id(engine: sa.Engine, prefix: str) -> str:
    """The full id of the one run whose id is ``prefix`` or starts with it.

    Raises:
        RunNotFound: no run matches, or several do (the message names a few).
    """
    prefix = prefix.strip()
    if not prefix:
        raise RunNotFound("give a run id or the start of one (`overnight runs` lists them)")
    query = (
        sa.select(runs.c.run_id)
        .where(runs.c.run_id.startswith(prefix, autoescape=True))  # % and _ match literally
        .order_by(runs.c.run_id)
        .limit(6)
    )
    with engine.connect() as connection:
        matches = connection.execute(query).scalars().all()
    if prefix in matches:
        return prefix
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFound(f"no run id starts with {prefix!r} (`overnight runs` lists them)")
    shown = ", ".join(match[:12] for match in matches[:5])
    more = " and more" if len(matches) > 5 else ""
    raise RunNotFound(f"{prefix!r} matches several runs ({shown}{more}): give more characters")


def run_details(engine: sa.Engine, run_id: str) -> dict[str, Any]:
    """Everything recorded about one run (full id): the runs row, its data set, files, metrics.

    Returns:
        The ``RUN_FIELDS`` of the run, plus ``dataset`` (the ``datasets`` row of its data version,
        or None), ``files`` (``{"path", "bytes"}`` under the output path, at most ``MAX_FILES``),
        ``files_total`` and ``metrics`` (see :func:`organise_metrics`).

    Raises:
        RunNotFound: no run has this id.
    """
    with engine.connect() as connection:
        row = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise RunNotFound(f"no run {run_id!r}")
        metric_rows = connection.execute(
            sa.select(
                run_metrics.c.split,
                run_metrics.c.slice,
                run_metrics.c.name,
                run_metrics.c.value,
                run_metrics.c.epoch,
                run_metrics.c.baseline,
            )
            .where(run_metrics.c.run_id == run_id)
            .order_by(run_metrics.c.id)
        ).all()
        dataset = None
        if row.data_version is not None:
            found = connection.execute(
                sa.select(datasets.c.path, datasets.c.fingerprint, datasets.c.rows, datasets.c.created_at).where(
                    datasets.c.data_version == row.data_version
                )
            ).first()
            dataset = dict(found._mapping) if found is not None else None
    details = {name: row._mapping[name] for name in RUN_FIELDS}
    files, total = list_files(row.output_path)
    details.update(
        dataset=dataset,
        files=files,
        files_total=total,
        metrics=organise_metrics(dict(metric._mapping) for metric in metric_rows),
    )
    return details


def list_files(path: str | Path | None, limit: int = MAX_FILES) -> tuple[list[dict[str, Any]], int]:
    """Files under an output path, relative and sorted, with sizes: (first ``limit``, total).

    A file output lists itself; a path that no longer exists lists nothing.
    """
    if not path:
        return [], 0
    root = Path(path)
    if root.is_file():
        return [{"path": root.name, "bytes": root.stat().st_size}], 1
    if not root.is_dir():
        return [], 0
    found = sorted(file for file in root.rglob("*") if file.is_file())
    return [{"path": file.relative_to(root).as_posix(), "bytes": file.stat().st_size} for file in found[:limit]], len(
        found
    )


def organise_metrics(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Metric rows (split, slice, name, value, epoch) grouped as a person reads them.

    Returns:
        ``final``: whole-split final figures ``{"split", "name", "value"}``; ``slices``: final
        per-slice ones ``{"split", "slice", "name", "value"}``; ``history``: one summary per
        (split, slice, name) with ``epochs``, ``first``, ``last``, ``best`` and ``best_epoch``
        (lowest for loss-like names, highest otherwise; NULL values are skipped).
    """
    final, slices, history = [], [], {}
    for row in rows:
        if row.get("baseline"):  # a baseline's figure, read beside the model's of the same name
            row = {**row, "name": f"{row['name']} ({row['baseline']} baseline)"}
        value = row["value"]
        value = None if value is None or not math.isfinite(value) else float(value)
        if row["epoch"] is not None:
            history.setdefault((row["split"], row["slice"], row["name"]), []).append((row["epoch"], value))
        elif row["slice"]:
            slices.append({"split": row["split"], "slice": row["slice"], "name": row["name"], "value": value})
        else:
            final.append({"split": row["split"], "name": row["name"], "value": value})
    summaries = []
    for (split, slice_, name), points in history.items():
        points.sort(key=lambda point: point[0])
        known = [point for point in points if point[1] is not None]
        pick = min if lower_is_better(name) else max
        best = pick(known, key=lambda point: point[1]) if known else (None, None)
        summaries.append(
            {
                "split": split,
                "slice": slice_,
                "name": name,
                "epochs": len(points),
                "first": points[0][1],
                "last": points[-1][1],
                "best": best[1],
                "best_epoch": best[0],
            }
        )
    return {"final": final, "slices": slices, "history": summaries}


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What differs between two runs (as :func:`run_details` returns them), B against A.

    Returns:
        ``a`` and ``b`` (id, task, status, started_at, version); ``parameters``: one
        ``{"name", "a", "b", "only_in"}`` per key whose value differs or that one run lacks
        (``only_in`` is "a", "b" or None); ``metrics``: ``{"split", "slice", "name", "a", "b",
        "delta"}`` for every final figure either run has (``delta`` = b - a, None unless both
        are numbers); ``data_version`` and ``git`` (``{"a", "b"}``), present only when they differ.
    """
    params_a, params_b = a.get("params") or {}, b.get("params") or {}
    parameters = []
    for name in sorted(set(params_a) | set(params_b)):
        if name in params_a and name in params_b and params_a[name] == params_b[name]:
            continue
        only_in = None if name in params_a and name in params_b else "a" if name in params_a else "b"
        parameters.append({"name": name, "a": params_a.get(name), "b": params_b.get(name), "only_in": only_in})

    values_a, values_b = _final_values(a), _final_values(b)
    metrics = []
    for key in sorted(set(values_a) | set(values_b), key=metric_order):
        value_a, value_b = values_a.get(key), values_b.get(key)
        delta = value_b - value_a if value_a is not None and value_b is not None else None
        metrics.append({"split": key[0], "slice": key[1], "name": key[2], "a": value_a, "b": value_b, "delta": delta})

    comparison: dict[str, Any] = {
        "a": {name: a.get(name) for name in ("run_id", "task", "status", "started_at", "version")},
        "b": {name: b.get(name) for name in ("run_id", "task", "status", "started_at", "version")},
        "parameters": parameters,
        "metrics": metrics,
    }
    if a.get("data_version") != b.get("data_version"):
        comparison["data_version"] = {"a": a.get("data_version"), "b": b.get("data_version")}
    git_a, git_b = (a.get("git_commit"), a.get("git_dirty")), (b.get("git_commit"), b.get("git_dirty"))
    if git_a != git_b:
        comparison["git"] = {"a": short_commit(*git_a, length=40), "b": short_commit(*git_b, length=40)}
    return comparison


def comparison_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """A comparison as flat rows (kind, split, slice, name, a, b, delta), for CSV."""
    rows = [
        {
            "kind": "parameter",
            "split": "",
            "slice": "",
            "name": item["name"],
            "a": item["a"],
            "b": item["b"],
            "delta": None,
        }
        for item in comparison["parameters"]
    ]
    rows += [{"kind": "metric", **item} for item in comparison["metrics"]]
    for kind in ("data_version", "git"):
        if kind in comparison:
            rows.append(
                {
                    "kind": kind,
                    "split": "",
                    "slice": "",
                    "name": kind,
                    "a": comparison[kind]["a"],
                    "b": comparison[kind]["b"],
                    "delta": None,
                }
            )
    return rows


# In runs.py, not run_text.py: compare_runs uses it as well as the tables (run_text imports runs).
def short_commit(commit: str | None, dirty: bool | None, length: int = SHORT_ID) -> str:
    """The commit's first characters, with "+" when the working tree had uncommitted changes."""
    if commit is None:
        return ""
    return commit[:length] + ("+" if dirty else "")


def _final_values(details: dict[str, Any]) -> dict[tuple[str, str, str], float | None]:
    metrics = details["metrics"]
    values = {(item["split"], "", item["name"]): item["value"] for item in metrics["final"]}
    values.update({(item["split"], item["slice"], item["name"]): item["value"] for item in metrics["slices"]})
    return values


def metric_order(key: tuple[str, str, str]) -> tuple:
    split, slice_, name = key
    return (METRIC_SPLITS.index(split) if split in METRIC_SPLITS else len(METRIC_SPLITS), split, slice_, name)
