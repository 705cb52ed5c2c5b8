"""Drift monitoring: a night's features and predictions against the training split's profile.

The profile and the features both sides share are pipeline/stages/profiles.py's; the distances
and their noise floors pipeline/stages/drift_statistics.py's. This module decides what is
compared with what, and builds the statistics and drift tables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from pipeline.common.columns import DRIFT_FRAME_COLUMNS, DRIFT_NOTE, PREDICTION_FEATURE, STATS_COLUMNS
from pipeline.common.metrics import NAME_LENGTH
from pipeline.stages.data_quality import categorical_checks, duplicate_id_check, numeric_checks
from pipeline.stages.drift_statistics import (
    EPSILON,
    class_share_noise,
    floors,
    js_noise,
    ks,
    ks_noise,
    psi,
    psi_noise,
    score,
    wasserstein,
    wasserstein_noise,
)
from pipeline.stages.profiles import (
    OTHER,
    bin_counts,
    class_counts,
    derived_features,
    monitored,
    reference_background,
    share_of,
    unreadable_images,
    value_moments,
)
from pipeline.stages.schema import Schema

logger = logging.getLogger(__name__)

CLASS_SHARE = "class_share"  # the drift method of one predicted class's share (`compare_classes`)
# Each drift row is also the run metric drift_<method>:<feature>, of at most NAME_LENGTH (64)
# characters: the class's name in "(prediction):<class>" gets what is left, 33 characters.
CLASS_NAME_LENGTH = NAME_LENGTH - len(f"drift_{CLASS_SHARE}:{PREDICTION_FEATURE}:")


@dataclass(frozen=True)
class DriftThresholds:
    """When a drift score alerts; defaults are common rules of thumb."""

    psi: float = 0.2  # population stability index: > 0.2 is a significant shift
    # The KS statistic D (largest gap between the two CDFs), not the p-value: with thousands of
    # rows a p-value is tiny for any shift at all, so it would alarm every night.
    ks: float = 0.2
    js: float = 0.1  # Jensen-Shannon distance, base 2, in [0, 1]
    # Wasserstein-1 distance in training standard deviations: a mean shift of 0.2 sd scores 0.2.
    wasserstein: float = 0.1
    # Data quality (pipeline/stages/data_quality.py): shares of the night's values.
    missing: float = 0.1  # more missing than in training, by this share
    out_of_range: float = 0.01  # outside the training minimum and maximum
    unseen: float = 0.05  # categories training never had
    duplicate_id: float = 0.01  # rows whose id an earlier row of the night had
    prediction_psi: float = 0.2  # shift of the predicted-class distribution
    # One predicted class this many times rarer (or commoner) tonight than in the reference: PSI
    # weighs a class by its share, so a 4% class that is never predicted moves it by ~0.13 only.
    class_share: float = 4.0
    min_rows: int = 30  # fewer batch rows than this: scores are computed but never alert (too noisy)
    # Small batches score high by chance alone (PSI > 0.2 on most 30-row samples of the training
    # distribution itself). Each threshold is raised to the score that sampling noise stays under
    # with this probability, so a nightly alert means a shift, not a small night.
    confidence: float = 0.999


def compare(
    batch: pd.DataFrame,
    schema: Schema,
    reference: dict,
    thresholds: DriftThresholds,
    predicted_classes: Sequence[str] | None = None,
    reference_predictions: dict | None = None,
    duplicate_ids: tuple[int, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature statistics and drift scores of one batch against the reference.

    Args:
        batch: the batch, typed by validation (the label may be absent).
        reference: from `reference_profile`, possibly read back from JSON.
        predicted_classes: the model's predictions for the batch, for the predicted-class check.
        reference_predictions: `prediction_profile` of the reference predictions; defaults to
            the reference's "predictions" entry when it has one.
        duplicate_ids: (rows rejected for a repeated id, rows read) of the night, checked on the
            schema's id column; None where the night has no id column.

    Returns:
        (stats, drift): stats has one row per feature and statistic (feature, statistic,
        batch_value, reference_value); drift one row per feature and method (feature, method,
        score, threshold, alert, note): a NaN score did not run and its note says why; a
        class_share row's note counts the class. A classification model's predictions get a
        `psi` row on "(prediction)" and a `class_share` row per class on "(prediction):<class>".
        Both are empty, with those columns, for an empty batch.

    Raises:
        ValueError: the batch lacks a feature column, or the reference a feature of the schema.
    """
    if len(batch) == 0:
        return pd.DataFrame(columns=STATS_COLUMNS), pd.DataFrame(columns=DRIFT_FRAME_COLUMNS)
    derived = derived_features(batch, schema, background=reference_background(reference))
    profiles = reference["features"]
    stats, drift = [], []
    for feature, column, kind in monitored(schema):
        if feature not in profiles:
            raise ValueError(f"monitoring: the reference has no profile of {feature!r}; rebuild it for this schema")
        if kind == "categorical":
            feature_stats, feature_drift = _compare_categorical(derived[feature], profiles[feature], thresholds)
            quality = categorical_checks(derived[feature], profiles[feature], thresholds)
        else:
            values = derived[feature]
            extra = {}
            if kind == "image":
                unreadable = unreadable_images(batch[column], derived, column)
                values, extra = values[~unreadable], {"unreadable": float(unreadable.sum())}
            feature_stats, feature_drift = _compare_numeric(values, profiles[feature], thresholds, extra)
            # A derived feature (image brightness, text length) has no range to keep: no out_of_range.
            quality = numeric_checks(values, profiles[feature], thresholds, ranged=kind == "numeric")
        feature_stats, feature_drift = feature_stats + quality[0], feature_drift + quality[1]
        stats += [(feature, *row) for row in feature_stats]
        drift += [(feature, *row) for row in feature_drift]
    if duplicate_ids is not None and schema.id_column:
        id_stats, id_drift = duplicate_id_check(*duplicate_ids, thresholds)
        stats += [(schema.id_column, *row) for row in id_stats]
        drift += [(schema.id_column, *row) for row in id_drift]
    reference_predictions = reference_predictions or reference.get("predictions")
    if predicted_classes is not None and reference_predictions and reference_predictions.get("kind") == "numeric":
        # Regression: predicted values drift like a numeric feature (PSI and KS), not as classes.
        values = pd.Series(list(predicted_classes), dtype="float64")
        prediction_thresholds = dataclasses.replace(thresholds, psi=thresholds.prediction_psi)
        _, prediction_drift = _compare_numeric(values, reference_predictions, prediction_thresholds, {})
        drift += [(PREDICTION_FEATURE, *row) for row in prediction_drift]
    elif predicted_classes is not None and reference_predictions:
        counts = class_counts(predicted_classes)
        drift.append((PREDICTION_FEATURE, *_compare_predictions(counts, reference_predictions, thresholds)))
        drift += compare_classes(counts, reference_predictions, thresholds)
    drift = _frame(drift, DRIFT_FRAME_COLUMNS)
    skipped = drift[drift["score"].isna()]
    if len(skipped):
        logger.info(
            "%d check(s) did not run: %s",
            len(skipped),
            "; ".join(f"{r.feature} {r.method} ({r.note})" for r in skipped.itertuples()),
        )
    return _frame(stats, STATS_COLUMNS), drift


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    if "alert" in frame.columns:
        frame["alert"] = frame["alert"].astype(bool)
    for column in ("batch_value", "reference_value", "score", "threshold"):
        if column in frame.columns:
            frame[column] = frame[column].astype("float64")
    return frame


def _compare_numeric(values: pd.Series, profile: dict, thresholds: DriftThresholds, extra: dict):
    rows = len(values)  # zero only when every image of the batch was unreadable
    present = values.dropna().to_numpy(dtype="float64")
    missing = rows - len(present)
    share = profile["missing_share"]
    batch = np.append(bin_counts(present, np.asarray(profile["edges"][1:-1], dtype="float64")), missing)
    expected = np.append(np.asarray(profile["proportions"]) * (1 - share), share)
    bin_floors = np.append(floors(profile), EPSILON)  # the last element is the missing share
    moments = value_moments(present)
    stats = [("rows", rows, profile["rows"]), ("missing_share", share_of(missing, rows, empty=np.nan), share)]
    stats += [(name, value, profile.get(name)) for name, value in extra.items()]
    stats += [(name, moments[name], profile[name]) for name in ("mean", "std", "min", "max")]
    reference_sample = np.asarray(profile["sample"], dtype="float64")
    reference_rows = max(1, round(profile["rows"] * (1 - share)))
    psi_limit = max(thresholds.psi, psi_noise(rows, profile["rows"], len(batch), thresholds.confidence))
    ks_limit = max(
        thresholds.ks, ks_noise(len(present), min(reference_rows, len(reference_sample)) or 1, thresholds.confidence)
    )
    spread = profile["std"] or 0.0
    why_not = "no values tonight" if not len(present) else None if len(reference_sample) else "training had no values"
    wasserstein_limit = max(
        thresholds.wasserstein, wasserstein_noise(len(present), reference_sample, spread, thresholds.confidence)
    )
    drift = [
        score("psi", psi(batch, expected, bin_floors, rows), psi_limit, rows, thresholds.min_rows),
        score("ks", ks(present, reference_sample), ks_limit, rows, thresholds.min_rows, why_not),
        score(
            "wasserstein",
            wasserstein(present, reference_sample, spread),
            wasserstein_limit,
            rows,
            thresholds.min_rows,
            why_not,
        ),
    ]
    return [_nan_for_none(row) for row in stats], drift


def _compare_categorical(values: pd.Series, profile: dict, thresholds: DriftThresholds):
    rows = len(values)
    known = list(profile["proportions"])
    present = values.dropna().astype(str)
    mapped = present.where(present.isin(known), OTHER)
    counts = mapped.value_counts()
    # The missing share is the last element on both sides: a column that starts arriving empty
    # is drift too, not just a change in the statistics table.
    batch = np.append([counts.get(name, 0) for name in known], rows - len(present)) / rows
    share = profile["missing_share"]
    expected = np.append(np.asarray([profile["proportions"][name] for name in known]) * (1 - share), share)
    stats = [
        ("rows", rows, profile["rows"]),
        ("missing_share", (rows - len(present)) / rows, share),
        ("categories", present.nunique(), profile["distinct"]),
    ]
    bins, confidence = len(batch), thresholds.confidence
    psi_limit = max(thresholds.psi, psi_noise(rows, profile["rows"], bins, confidence))
    js_limit = max(thresholds.js, js_noise(rows, profile["rows"], bins, confidence))
    drift = [
        score("psi", psi(batch, expected, rows=rows), psi_limit, rows, thresholds.min_rows),
        score("js", float(jensenshannon(batch, expected, base=2)), js_limit, rows, thresholds.min_rows),
    ]
    return stats, drift


def _compare_predictions(counts: dict[str, int], reference: dict, thresholds: DriftThresholds):
    rows = sum(counts.values())
    names = sorted(set(counts) | set(reference["proportions"]))
    batch = np.asarray([counts.get(name, 0) for name in names]) / max(rows, 1)
    expected = np.asarray([reference["proportions"].get(name, 0.0) for name in names])
    limit = max(
        thresholds.prediction_psi, psi_noise(rows, reference.get("rows", rows), len(names), thresholds.confidence)
    )
    return score("psi", psi(batch, expected, rows=rows), limit, rows, thresholds.min_rows, "no predictions tonight")


def compare_classes(counts: dict[str, int], reference: dict, thresholds: DriftThresholds) -> list[tuple]:
    """One `class_share` drift row per class predicted tonight or by the reference.

    The score is how many times rarer (or commoner) the class is tonight than in the reference,
    each side floored at half a row (a class never predicted tonight is finite); it alerts past
    `thresholds.class_share` or past what chance gives a class of that share on a night of this
    many rows (`class_share_noise`), whichever is larger. So a 4% class that vanishes alerts on
    300 rows (chance leaves it empty once in 300,000 nights) but not on 30 (one night in four),
    and a 0.1% class that vanishes never does. The note counts the class tonight and in the
    reference, which way it moved included.

    Returns:
        [(feature, method, score, threshold, alert, note)], feature "(prediction):<class>"; one
        row on "(prediction)" with a NaN score when there are no predictions.
    """
    rows = sum(counts.values())
    if not rows:
        none = score(CLASS_SHARE, np.nan, thresholds.class_share, 0, thresholds.min_rows, "no predictions tonight")
        return [(PREDICTION_FEATURE, *none)]
    proportions = reference["proportions"]
    reference_rows = reference.get("rows") or rows
    drift = []
    for name in sorted(set(counts) | set(proportions)):
        expected = max(proportions.get(name, 0.0), 0.5 / reference_rows)
        count = counts.get(name, 0)
        share = max(count, 0.5) / rows
        low, high = class_share_noise(rows, reference_rows, expected, thresholds.confidence)
        fold, noise = (expected / share, expected / low) if share < expected else (share / expected, high / expected)
        row = score(CLASS_SHARE, fold, max(thresholds.class_share, noise), rows, thresholds.min_rows)
        named = "" if len(name) <= CLASS_NAME_LENGTH else f"class {name!r}: "
        note = (
            f"{named}{count} of {rows} tonight ({_percent(count / rows)}), "
            f"{_percent(proportions.get(name, 0.0))} of {reference_rows:,} in the reference"
        )
        drift.append((f"{PREDICTION_FEATURE}:{_short(name)}", *row[:-1], note))
    return drift


def _short(name: str) -> str:
    """The class's name, or for a long one its start and a hash of the whole (two long names
    that start alike stay apart); the note keeps the whole name."""
    if len(name) <= CLASS_NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: CLASS_NAME_LENGTH - 9]}~{digest}"


def _percent(share: float) -> str:
    """4.1%, 0.05%, 0%: three significant figures, none trailing."""
    return f"{100 * share:.3g}%"


def _nan_for_none(row: tuple) -> tuple:
    return tuple(np.nan if value is None else value for value in row)


def alert_line(drift: pd.DataFrame) -> str:
    """One line naming each drifted feature once with its alerting methods; "" when none.

    e.g. "drift in image:centre_x (psi 1.83 > 0.20, ks 0.71 > 0.20), (prediction):late
    (class_share 24.60 > 4.73: 0 of 300 tonight (0%), 4.1% of 1,000 in the reference)"
    """
    alerts = drift[drift["alert"].astype(bool)] if len(drift) else drift
    if alerts.empty:
        return ""
    parts = []
    for feature, rows in alerts.groupby("feature", sort=False):
        methods = ", ".join(_alert_part(row) for row in rows.to_dict("records"))
        parts.append(f"{feature} ({methods})")
    return "drift in " + ", ".join(parts)


def _alert_part(row: dict) -> str:
    part = f"{row['method']} {row['score']:.2f} > {row['threshold']:.2f}"
    note = row.get(DRIFT_NOTE)
    return f"{part}: {note}" if isinstance(note, str) and note else part
