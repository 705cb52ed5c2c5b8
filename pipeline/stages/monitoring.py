"""Drift monitoring: a reference profile of the training split, compared with each nightly batch.

Every feature is reduced to something a distance can be taken on: numeric columns as they are,
text as its token count, images as a few numbers from the decoded pixels (brightness, contrast,
where the ink is, size). `derived_features` does that for both sides, so the reference and the
batch can never be measured differently. The reference is plain JSON, saved beside the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image
from scipy.spatial.distance import jensenshannon

from pipeline.common.columns import DRIFT_COLUMNS, STATS_COLUMNS
from pipeline.stages.drift_statistics import EPSILON, floors, js_noise, ks, ks_noise, psi, psi_noise, score
from pipeline.stages.features import tokenize
from pipeline.stages.schema import Schema

OTHER = "(other)"  # categories beyond the reference's top ones
MISSING = "(missing)"  # a missing predicted class
PREDICTION = "(prediction)"  # the feature name of the predicted-class check
TOP_CATEGORIES = 50
# Pixel statistics are taken on a thumbnail: a 12-megapixel photo is slow to read as floats and
# its brightness, contrast and centre of mass barely change when it is shrunk.
THUMBNAIL_SIDE = 256
IMAGE_DECIMALS = 6  # far finer than any drift worth seeing
IMAGE_FEATURES = ("brightness", "contrast", "centre_x", "centre_y", "width", "height")
REFERENCE_FORMAT = 1


@dataclass(frozen=True)
class DriftThresholds:
    """When a drift score alerts; defaults are common rules of thumb."""

    psi: float = 0.2  # population stability index: > 0.2 is a significant shift
    # The KS statistic D (largest gap between the two CDFs), not the p-value: with thousands of
    # rows a p-value is tiny for any shift at all, so it would alarm every night.
    ks: float = 0.2
    js: float = 0.1  # Jensen-Shannon distance, base 2, in [0, 1]
    prediction_psi: float = 0.2  # shift of the predicted-class distribution
    min_rows: int = 30  # fewer batch rows than this: scores are computed but never alert (too noisy)
    # Small batches score high by chance alone (PSI > 0.2 on most 30-row samples of the training
    # distribution itself). Each threshold is raised to the score that sampling noise stays under
    # with this probability, so a nightly alert means a shift, not a small night.
    confidence: float = 0.999


# ---------------------------------------------------------------------------------------------
# Derived features


def derived_features(table: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The monitored features of a table, one column each, on the table's index.

    Numeric columns as float64, categorical columns as strings (or NaN), text as
    `<column>:length` (token count; NaN when missing), images as `<column>:<statistic>` for each
    of IMAGE_FEATURES (NaN when the path is missing or the file unreadable).

    Raises:
        ValueError: the table lacks a feature column of the schema.
    """
    absent = [column for column in schema.kinds if column not in table.columns]
    if absent:
        raise ValueError(f"monitoring: the table lacks feature column(s) {', '.join(map(repr, absent))}")
    parts = [_derive(table[column], column, kind) for column, kind in schema.kinds.items()]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=table.index)


def _derive(values: pd.Series, column: str, kind: str) -> pd.DataFrame:
    if kind == "numeric":
        return pd.DataFrame({column: pd.to_numeric(values, errors="coerce").astype("float64")})
    if kind == "text":
        lengths = [float(len(tokenize(text))) if isinstance(text, str) else np.nan for text in values]
        return pd.DataFrame({f"{column}:length": lengths}, index=values.index)
    if kind == "image":
        rows = [_image_statistics(path) if isinstance(path, str) else None for path in values]
        empty = dict.fromkeys(IMAGE_FEATURES, np.nan)
        frame = pd.DataFrame([row or empty for row in rows], index=values.index, columns=list(IMAGE_FEATURES))
        return frame.astype("float64").add_prefix(f"{column}:")
    return pd.DataFrame({column: values.where(values.isna(), values.astype(str)).astype(object)})


def _image_statistics(path: str) -> dict[str, float] | None:
    """Pixel statistics of one image as grayscale in [0, 1]; None when it cannot be read."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.draft("L", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # JPEG: decode at a reduced size
            gray = image.convert("L")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    gray.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    pixels = np.asarray(gray, dtype="float64") / 255.0  # (rows, columns) in [0, 1]
    centre_x, centre_y = _centre_of_mass(pixels)
    # Rounded: the same picture at another intensity must give the same centre, not one a
    # rounding error away that lands on the other side of a bin edge or a KS step.
    statistics = {
        "brightness": pixels.mean(),
        "contrast": pixels.std(),
        "centre_x": centre_x,
        "centre_y": centre_y,
        "width": width,
        "height": height,
    }
    return {name: round(float(value), IMAGE_DECIMALS) for name, value in statistics.items()}


def _centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted centre as fractions of width and height; a blank image is centred."""
    total = pixels.sum()
    if total <= 0:
        return 0.5, 0.5
    rows, columns = pixels.shape
    # Pixel i covers [i, i + 1): its centre is i + 0.5, so a symmetric image gives exactly 0.5.
    centre_x = pixels.sum(axis=0) @ (np.arange(columns) + 0.5) / total / columns
    centre_y = pixels.sum(axis=1) @ (np.arange(rows) + 0.5) / total / rows
    return float(centre_x), float(centre_y)


def _monitored(schema: Schema) -> list[tuple[str, str, str]]:
    """(feature, source column, profile kind) of every monitored feature, in schema order."""
    features = []
    for column, kind in schema.kinds.items():
        if kind == "text":
            features.append((f"{column}:length", column, "numeric"))
        elif kind == "image":
            features += [(f"{column}:{name}", column, "image") for name in IMAGE_FEATURES]
        else:
            features.append((column, column, kind))
    return features


def _unreadable(paths: pd.Series, derived: pd.DataFrame, column: str) -> pd.Series:
    # Every readable image has a width, so a path without one is a file that could not be read.
    return paths.notna() & derived[f"{column}:width"].isna()


# ---------------------------------------------------------------------------------------------
# Profiles


def reference_profile(
    table: pd.DataFrame, schema: Schema, *, bins: int = 10, sample: int = 2000, seed: int = 0
) -> dict:
    """The training split's profile, plain JSON (saved as reference.json beside the model).

    Args:
        table: the training split, typed by validation.
        bins: quantile bins per numeric feature (deciles by default).
        sample: the most values kept per numeric feature for KS, and images decoded.
        seed: for both samples, so the same split gives the same reference.

    Returns:
        {"format", "bins", "rows", "features": {feature: profile}}; a numeric profile has
        "edges" (training min, quantiles, max; None for the open ends, see `_bin_counts`),
        "proportions" per bin among present values,
        missing share, mean, std, min, max and a sorted "sample"; a categorical profile has the
        top categories' proportions (the rest as "(other)"). Image features also count the
        unreadable files they skipped. Add `prediction_profile(...)` as "predictions" to check
        the predicted classes too.
    """
    plain = dataclasses.replace(schema, kinds={c: k for c, k in schema.kinds.items() if k != "image"})
    images = dataclasses.replace(schema, kinds={c: k for c, k in schema.kinds.items() if k == "image"})
    # Decoding is the slow part: the reference looks at a sample of the images only.
    image_rows = table.sample(n=sample, random_state=seed) if len(table) > sample else table
    derived = {"plain": derived_features(table, plain), "image": derived_features(image_rows, images)}
    rng = np.random.default_rng(seed)
    features = {}
    for feature, column, kind in _monitored(schema):
        if kind == "categorical":
            features[feature] = _categorical_profile(derived["plain"][feature])
        elif kind == "numeric":
            features[feature] = _numeric_profile(derived["plain"][feature], bins, sample, rng)
        else:
            unreadable = _unreadable(image_rows[column], derived["image"], column)
            values = derived["image"][feature][~unreadable]
            features[feature] = {**_numeric_profile(values, bins, sample, rng), "unreadable": int(unreadable.sum())}
    return {"format": REFERENCE_FORMAT, "bins": bins, "rows": len(table), "features": features}


def prediction_profile(
    predicted_classes: Sequence, *, numeric: bool = False, bins: int = 10, sample: int = 2000, seed: int = 0
) -> dict:
    """Proportions of the predicted classes (a missing prediction counts as "(missing)"), or for
    a regression model (numeric=True) a numeric profile of the predicted values."""
    if numeric:
        values = pd.Series(list(predicted_classes), dtype="float64")
        return _numeric_profile(values, bins, sample, np.random.default_rng(seed))
    counts = _class_counts(predicted_classes)
    total = sum(counts.values())
    return {"rows": total, "proportions": {name: count / total for name, count in counts.items()}}


def _class_counts(predicted_classes: Sequence[str]) -> dict[str, int]:
    names = pd.Series(list(predicted_classes), dtype=object)
    names = names.where(names.notna(), MISSING).astype(str)
    return {str(name): int(count) for name, count in names.value_counts(sort=False).sort_index().items()}


def _numeric_profile(values: pd.Series, bins: int, sample: int, rng: np.random.Generator) -> dict:
    present = values.dropna().to_numpy(dtype="float64")
    cuts = _cut_points(present, bins)
    kept = rng.choice(present, size=sample, replace=False) if len(present) > sample else present
    return {
        "kind": "numeric",
        "rows": len(values),
        "missing_share": _share(values.isna().sum(), len(values)),
        "edges": [None, *cuts.tolist(), None],
        "proportions": (_bin_counts(present, cuts) / max(len(present), 1)).tolist(),
        **_moments(present),
        "sample": np.sort(kept).tolist(),
    }


def _cut_points(present: np.ndarray, bins: int) -> np.ndarray:
    """Finite bin edges: training minimum, quantiles and maximum, deduplicated.

    With the open ends this makes up to bins + 2 bins: below the training minimum, the quantile
    bins, above the maximum. The outer bins hold no training value, so values outside the
    training range count as drift (see `drift_statistics.floors`). Repeated values collapse
    equal quantiles; a constant column keeps its value twice, so its one finite bin
    [value, value] sits between below and above instead of the edges collapsing to nothing.
    """
    if len(present) == 0:
        return np.array([])
    cuts = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))
    return np.repeat(cuts, 2) if len(cuts) == 1 else cuts


def _bin_counts(present: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Counts per bin: (-inf, e0), [e0, e1], (e1, e2], ..., (e_last, +inf).

    Closed on the right, so a value equal to a cut point (a pile of zeros, a constant) stays in
    the bin the quantile put it in; the training minimum itself belongs to the first quantile bin.
    """
    if len(cuts) == 0:
        return np.asarray([len(present)])
    index = np.where(present < cuts[0], 0, np.maximum(np.searchsorted(cuts, present, side="left"), 1))
    return np.bincount(index, minlength=len(cuts) + 1)


def _moments(present: np.ndarray) -> dict:
    if len(present) == 0:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present.min()),
        "max": float(present.max()),
    }


def _categorical_profile(values: pd.Series) -> dict:
    present = values.dropna().astype(str)
    counts = present.value_counts()
    proportions = {str(name): float(count / len(present)) for name, count in counts.iloc[:TOP_CATEGORIES].items()}
    rest = counts.iloc[TOP_CATEGORIES:].sum() / max(len(present), 1)
    proportions[OTHER] = proportions.get(OTHER, 0.0) + float(rest)
    return {
        "kind": "categorical",
        "rows": len(values),
        "missing_share": _share(values.isna().sum(), len(values)),
        "distinct": int(len(counts)),
        "proportions": proportions,
    }


def _share(count, total: int, empty: float = 0.0) -> float:
    return float(count) / total if total else empty


# ---------------------------------------------------------------------------------------------
# Comparison


def compare(
    batch: pd.DataFrame,
    schema: Schema,
    reference: dict,
    thresholds: DriftThresholds,
    predicted_classes: Sequence[str] | None = None,
    reference_predictions: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature statistics and drift scores of one batch against the reference.

    Args:
        batch: the batch, typed by validation (the label may be absent).
        reference: from `reference_profile`, possibly read back from JSON.
        predicted_classes: the model's predictions for the batch, for the predicted-class check.
        reference_predictions: `prediction_profile` of the reference predictions; defaults to
            the reference's "predictions" entry when it has one.

    Returns:
        (stats, drift): stats has one row per feature and statistic (feature, statistic,
        batch_value, reference_value); drift one row per feature and method (feature, method,
        score, threshold, alert). Both are empty, with those columns, for an empty batch.

    Raises:
        ValueError: the batch lacks a feature column, or the reference a feature of the schema.
    """
    if len(batch) == 0:
        return pd.DataFrame(columns=STATS_COLUMNS), pd.DataFrame(columns=DRIFT_COLUMNS)
    derived = derived_features(batch, schema)
    profiles = reference["features"]
    stats, drift = [], []
    for feature, column, kind in _monitored(schema):
        if feature not in profiles:
            raise ValueError(f"monitoring: the reference has no profile of {feature!r}; rebuild it for this schema")
        if kind == "categorical":
            feature_stats, feature_drift = _compare_categorical(derived[feature], profiles[feature], thresholds)
        else:
            values = derived[feature]
            extra = {}
            if kind == "image":
                unreadable = _unreadable(batch[column], derived, column)
                values, extra = values[~unreadable], {"unreadable": float(unreadable.sum())}
            feature_stats, feature_drift = _compare_numeric(values, profiles[feature], thresholds, extra)
        stats += [(feature, *row) for row in feature_stats]
        drift += [(feature, *row) for row in feature_drift]
    reference_predictions = reference_predictions or reference.get("predictions")
    if predicted_classes is not None and reference_predictions and reference_predictions.get("kind") == "numeric":
        # Regression: predicted values drift like a numeric feature (PSI and KS), not as classes.
        values = pd.Series(list(predicted_classes), dtype="float64")
        prediction_thresholds = dataclasses.replace(thresholds, psi=thresholds.prediction_psi)
        _, prediction_drift = _compare_numeric(values, reference_predictions, prediction_thresholds, {})
        drift += [(PREDICTION, *row) for row in prediction_drift]
    elif predicted_classes is not None and reference_predictions:
        drift.append((PREDICTION, *_compare_predictions(predicted_classes, reference_predictions, thresholds)))
    return _frame(stats, STATS_COLUMNS), _frame(drift, DRIFT_COLUMNS)


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
    batch = np.append(_bin_counts(present, np.asarray(profile["edges"][1:-1], dtype="float64")), missing)
    expected = np.append(np.asarray(profile["proportions"]) * (1 - share), share)
    bin_floors = np.append(floors(profile), EPSILON)  # the last element is the missing share
    moments = _moments(present)
    stats = [("rows", rows, profile["rows"]), ("missing_share", _share(missing, rows, empty=np.nan), share)]
    stats += [(name, value, profile.get(name)) for name, value in extra.items()]
    stats += [(name, moments[name], profile[name]) for name in ("mean", "std", "min", "max")]
    reference_sample = np.asarray(profile["sample"], dtype="float64")
    reference_rows = max(1, round(profile["rows"] * (1 - share)))
    psi_limit = max(thresholds.psi, psi_noise(rows, profile["rows"], len(batch), thresholds.confidence))
    ks_limit = max(
        thresholds.ks, ks_noise(len(present), min(reference_rows, len(reference_sample)) or 1, thresholds.confidence)
    )
    drift = [
        score("psi", psi(batch, expected, bin_floors, rows), psi_limit, rows, thresholds.min_rows),
        score("ks", ks(present, reference_sample), ks_limit, rows, thresholds.min_rows),
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


def _compare_predictions(predicted_classes: Sequence[str], reference: dict, thresholds: DriftThresholds):
    counts = _class_counts(predicted_classes)
    rows = sum(counts.values())
    names = sorted(set(counts) | set(reference["proportions"]))
    batch = np.asarray([counts.get(name, 0) for name in names]) / max(rows, 1)
    expected = np.asarray([reference["proportions"].get(name, 0.0) for name in names])
    limit = max(
        thresholds.prediction_psi, psi_noise(rows, reference.get("rows", rows), len(names), thresholds.confidence)
    )
    return score("psi", psi(batch, expected, rows=rows), limit, rows, thresholds.min_rows)


def _nan_for_none(row: tuple) -> tuple:
    return tuple(np.nan if value is None else value for value in row)


def alert_line(drift: pd.DataFrame) -> str:
    """One line naming each drifted feature once with its alerting methods; "" when none.

    e.g. "drift in image:centre_x (psi 1.83 > 0.20, ks 0.71 > 0.20), (prediction) (psi 0.95 > 0.20)"
    """
    alerts = drift[drift["alert"].astype(bool)] if len(drift) else drift
    if alerts.empty:
        return ""
    parts = []
    for feature, rows in alerts.groupby("feature", sort=False):
        methods = ", ".join(f"{row.method} {row.score:.2f} > {row.threshold:.2f}" for row in rows.itertuples())
        parts.append(f"{feature} ({methods})")
    return "drift in " + ", ".join(parts)
