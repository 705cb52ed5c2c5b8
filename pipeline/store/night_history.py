"""What the prediction log holds about one night and the nights before it: the nightly report's data.

One read of the database (SQLAlchemy Core, bound parameters) into a `NightHistory`; the report
(pipeline/rendering/reports/nightly.py) only draws it.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from pipeline.store.tables import ONLINE, model_versions, night_quality
from pipeline.store.tables import batches as batches_table
from pipeline.store.tables import drift as drift_table
from pipeline.store.tables import predictions as predictions_table
from pipeline.store.views import (
    drift_alerts_view,
    prediction_quality_by_origin_view,
    prediction_quality_daily_view,
    resolved_labels_view,
)


@dataclass(frozen=True)
class TrivialPredictor:
    """What live quality is read against: always one class (the training split's most frequent,
    classification) or always one value (the training split's mean, regression)."""

    value: str | float

    @property
    def name(self) -> str:
        """How the report names it: "always 'on time'", "always 12.5 (the training mean)"."""
        if isinstance(self.value, str):
            return f"always '{self.value}'"
        return f"always {self.value:.4g} (the training mean)"


@dataclass(frozen=True)
class NightHistory:
    batch_date: datetime.date
    model_version: str
    dates: list[datetime.date]  # the nights shown, oldest first, this one last
    task: str  # classification or regression
    batches: list[dict]  # `batches` rows of those nights, in load order
    drift: list[dict]  # `drift` rows of those nights, of the model chosen for each night, with "acknowledged"
    chosen: dict  # night -> the model whose figures it shows
    counts: dict[str, int]  # classification: this night's predictions per class
    values: np.ndarray | None  # regression: this night's predicted values
    quality: list[dict]  # prediction_quality_daily rows of those nights
    test_metrics: dict  # the model's test metrics when it was registered
    evaluation_path: str | None  # the model's evaluation folder (its test predictions)
    trivial: TrivialPredictor | None = None  # what live quality is compared with; None: not known
    # Per night and model, the trivial predictor on the rows prediction_quality_daily counts:
    # batch_date, model_version, labeled, and accuracy (classification) or mae (regression).
    trivial_quality: list[dict] = field(default_factory=list)
    # Per (night, model): the predictions `overnight serve` answered that day (origin 'online').
    online: dict[tuple, int] = field(default_factory=dict)
    # prediction_quality_by_origin rows of those nights: the quality rows above, apart by origin.
    quality_by_origin: list[dict] = field(default_factory=list)

    def failing_alerts(self) -> dict[datetime.date, list[dict]]:
        """Each night's alerts that no acknowledgement covers: those that failed it."""
        alerts: dict[datetime.date, list[dict]] = {}
        for row in self.drift:
            if row["alert"] and not row.get("acknowledged"):
                alerts.setdefault(row["batch_date"], []).append(row)
        return alerts


def night_history(
    engine: sa.Engine,
    *,
    batch_date: datetime.date,
    model_version: str,
    nights: int = 14,
    trivial: TrivialPredictor | None = None,
) -> NightHistory:
    """The night `batch_date` scored by `model_version`, with up to `nights` nights up to it.

    Args:
        trivial: what always predicting the training majority class (or mean) is scored with on
            each night's labeled rows (pipeline/artifacts/trivial.py finds it); None: not scored.
    """
    if nights < 1:
        raise ValueError(f"nights must be at least 1, not {nights}")
    with engine.connect() as connection:
        dates = _nights_up_to(connection, batch_date, nights)
        batch_order = (batches_table.c.batch_date, batches_table.c.loaded_at)
        batch_rows = _rows(
            connection, sa.select(batches_table).where(batches_table.c.batch_date.in_(dates)).order_by(*batch_order)
        )
        drift_rows = _with_acknowledged(_rows(connection, _drift_query(dates)), _acknowledged(connection, dates))
        model = connection.execute(
            sa.select(model_versions.c.task, model_versions.c.evaluation_path, model_versions.c.metrics).where(
                model_versions.c.version == model_version
            )
        ).first()
        task = (model.task if model is not None else None) or "classification"
        counts, values = _predicted(connection, batch_date, model_version, task)
        quality = _rows(
            connection,
            sa.select(prediction_quality_daily_view)
            .where(prediction_quality_daily_view.c.batch_date.in_(dates))
            .order_by(prediction_quality_daily_view.c.batch_date),
        )
        trivial_quality = _rows(connection, _trivial_query(dates, trivial, task)) if trivial is not None else []
        online = _answered_online(connection, dates)
        by_origin = _rows(
            connection,
            sa.select(prediction_quality_by_origin_view).where(
                prediction_quality_by_origin_view.c.batch_date.in_(dates)
            ),
        )
    chosen = model_per_night(batch_rows, drift_rows, model_version)
    metrics = model.metrics if model is not None else None
    if isinstance(metrics, str):
        metrics = json.loads(metrics)
    return NightHistory(
        batch_date=batch_date,
        model_version=model_version,
        dates=dates,
        task=task,
        batches=batch_rows,
        drift=[row for row in drift_rows if chosen.get(row["batch_date"]) == row["model_version"]],
        chosen=chosen,
        counts=counts,
        values=values,
        quality=quality,
        test_metrics=(metrics or {}).get("test", {}),
        evaluation_path=model.evaluation_path if model is not None else None,
        trivial=trivial,
        trivial_quality=trivial_quality,
        online=online,
        quality_by_origin=by_origin,
    )


def model_per_night(batch_rows: list[dict], drift_rows: list[dict], model_version: str) -> dict:
    """The model whose figures a night shows: this report's model where it scored the night, else
    the model that scored it last (after a rollback, older nights were scored by another model)."""
    chosen = {}
    for row in batch_rows:  # ordered by loaded_at: the last one wins
        chosen[row["batch_date"]] = row["model_version"]
    for row in [*batch_rows, *drift_rows]:
        if row["model_version"] == model_version:
            chosen[row["batch_date"]] = model_version
    for row in drift_rows:
        chosen.setdefault(row["batch_date"], row["model_version"])
    return chosen


def _nights_up_to(connection: sa.Connection, batch_date: datetime.date, nights: int) -> list[datetime.date]:
    query = (
        sa.select(batches_table.c.batch_date)
        .where(batches_table.c.batch_date <= batch_date)
        .distinct()
        .order_by(batches_table.c.batch_date.desc())
        .limit(nights)
    )
    dates = [row[0] for row in connection.execute(query)]
    if batch_date not in dates:
        dates = [batch_date, *dates][:nights]
    return sorted(dates)


def _drift_query(dates: list[datetime.date]):
    columns = ("batch_date", "model_version", "feature", "method", "score", "threshold", "alert")
    return (
        sa.select(*(drift_table.c[name] for name in columns))
        .where(drift_table.c.batch_date.in_(dates))
        .order_by(drift_table.c.batch_date, drift_table.c.id)
    )


def _acknowledged(connection: sa.Connection, dates: list[datetime.date]) -> set[tuple]:
    """(night, model, feature, method) of every acknowledged alert of those nights (`drift_alerts`)."""
    view = drift_alerts_view
    query = sa.select(view.c.batch_date, view.c.model_version, view.c.feature, view.c.method).where(
        view.c.batch_date.in_(dates), view.c.acknowledged_by.is_not(None)
    )
    return {tuple(row) for row in connection.execute(query)}


def _with_acknowledged(drift_rows: list[dict], acknowledged: set[tuple]) -> list[dict]:
    keys = ("batch_date", "model_version", "feature", "method")
    return [{**row, "acknowledged": tuple(row[key] for key in keys) in acknowledged} for row in drift_rows]


def _trivial_query(dates: list[datetime.date], trivial: TrivialPredictor, task: str):
    """Per night and model, the trivial predictor's accuracy (or MAE) on the labeled predictions.

    The same rows as prediction_quality_daily: predictions joined to their resolved label, ties
    no tie-break settles left out. Read through the resolved_labels view, whatever keeps it.
    """
    predictions, labels = predictions_table, resolved_labels_view
    joined = predictions.join(labels, (labels.c.example_id == predictions.c.example_id) & labels.c.label.is_not(None))
    if task == "classification":
        hits = sa.func.sum(sa.case((labels.c.label == str(trivial.value), 1), else_=0))
        figure = (sa.cast(hits, sa.Float) / sa.func.count()).label("accuracy")
    else:
        figure = sa.func.avg(sa.func.abs(labels.c.label_value - float(trivial.value))).label("mae")
    return (
        sa.select(predictions.c.batch_date, predictions.c.model_version, sa.func.count().label("labeled"), figure)
        .select_from(joined)
        .where(predictions.c.batch_date.in_(dates))
        .group_by(predictions.c.batch_date, predictions.c.model_version)
        .order_by(predictions.c.batch_date)
    )


def _answered_online(connection: sa.Connection, dates: list[datetime.date]) -> dict[tuple, int]:
    """{(night, model): predictions answered online that day}, read from the per-night counts."""
    query = sa.select(night_quality.c.batch_date, night_quality.c.model_version, night_quality.c.predicted).where(
        night_quality.c.batch_date.in_(dates), night_quality.c.origin == ONLINE
    )
    return {(row[0], row[1]): int(row[2]) for row in connection.execute(query)}


def _predicted(connection: sa.Connection, batch_date, model_version: str, task: str):
    """(counts per class, None) for classification, ({}, predicted values) for regression."""
    night = (predictions_table.c.batch_date == batch_date) & (predictions_table.c.model_version == model_version)
    if task == "classification":
        query = sa.select(predictions_table.c.prediction, sa.func.count()).where(night)
        return {
            str(row[0]): int(row[1]) for row in connection.execute(query.group_by(predictions_table.c.prediction))
        }, None
    scores = connection.execute(sa.select(predictions_table.c.score).where(night))
    return {}, np.array([row[0] for row in scores if row[0] is not None], dtype=float)


def _rows(connection: sa.Connection, query) -> list[dict]:
    return [dict(row._mapping) for row in connection.execute(query)]
