"""Profiles for drift monitoring: the training split's reference, and the features both sides share.

Every feature is reduced to something a distance can be taken on: numeric columns as they are,
text as its token count, images as a few numbers from the decoded pixels (brightness, contrast,
where the ink is, size). `derived_features` does that for both sides, so the reference and the
night can never be measured differently. The reference is plain JSON, saved beside the model;
pipeline/stages/monitoring.py compares a night with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.stages.images import WHITE, Background, read_image
from pipeline.stages.schema import Schema
from pipeline.stages.text_encoding import tokenize

OTHER = "(other)"  # categories beyond the reference's top ones


MISSING = "(missing)"  # a missing predicted class


TOP_CATEGORIES = 50  # categories with their own proportion (PSI, Jensen-Shannon); the rest "(other)"


# Every training category is kept (for the `unseen` check) up to this many: 10,000 names are a
# few hundred kilobytes of reference.json. Beyond it the column is closer to an id than a
# category, and `unseen` says that it did not run and why.
MAX_VOCABULARY = 10_000


# Pixel statistics are taken on a thumbnail: a 12-megapixel photo is slow to read as floats and
# its brightness, contrast and centre of mass barely change when it is shrunk.
THUMBNAIL_SIDE = 256


IMAGE_DECIMALS = 6  # far finer than any drift worth seeing


IMAGE_FEATURES = ("brightness", "contrast", "centre_x", "centre_y", "width", "height")


UNMONITORED = ("datetime",)  # kinds without a drift score (see derived_features)


ORIENTATION_TAG = 0x0112  # EXIF Orientation


REFERENCE_FORMAT = 1


def derived_features(table: pd.DataFrame, schema: Schema, *, background: Background | None = WHITE) -> pd.DataFrame:
    """The monitored features of a table, one column each, on the table's index.

    Numeric columns as float64, categorical columns as strings (or NaN), text as
    `<column>:length` (token count; NaN when missing), images as `<column>:<statistic>` for each
    of IMAGE_FEATURES (NaN when the path is missing or the file unreadable), decoded onto the
    background the model was trained with. Dates are not monitored: a night's dates are always
    later than training's, so a drift score on them would alert every night.

    Raises:
        ValueError: the table lacks a feature column of the schema.
    """
    kinds = {column: kind for column, kind in schema.kinds.items() if kind not in UNMONITORED}
    absent = [column for column in kinds if column not in table.columns]
    if absent:
        raise ValueError(f"monitoring: the table lacks feature column(s) {', '.join(map(repr, absent))}")
    parts = [_derive(table[column], column, kind, background) for column, kind in kinds.items()]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=table.index)


def _derive(values: pd.Series, column: str, kind: str, background: Background | None) -> pd.DataFrame:
    if kind == "numeric":
        return pd.DataFrame({column: pd.to_numeric(values, errors="coerce").astype("float64")})
    if kind == "text":
        lengths = [float(len(tokenize(text))) if isinstance(text, str) else np.nan for text in values]
        return pd.DataFrame({f"{column}:length": lengths}, index=values.index)
    if kind == "image":
        rows = [_image_statistics(path, background) if isinstance(path, str) else None for path in values]
        empty = dict.fromkeys(IMAGE_FEATURES, np.nan)
        frame = pd.DataFrame([row or empty for row in rows], index=values.index, columns=list(IMAGE_FEATURES))
        return frame.astype("float64").add_prefix(f"{column}:")
    return pd.DataFrame({column: values.where(values.isna(), values.astype(str)).astype(object)})


def _image_statistics(path: str, background: Background | None) -> dict[str, float] | None:
    """Pixel statistics of one image as grayscale in [0, 1]; None when it cannot be read."""
    try:
        with Image.open(path) as image:
            upright = _turned(image) and background is not None  # None: as profiled before 0.2
            width, height = (image.height, image.width) if upright else image.size
        gray = read_image(path, channels=1, background=background, draft=THUMBNAIL_SIDE)
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


def _turned(image: Image.Image) -> bool:
    """EXIF says the picture is stored on its side (orientations 5 to 8): width and height swap."""
    return image.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)


def monitored(schema: Schema) -> list[tuple[str, str, str]]:
    """(feature, source column, profile kind) of every monitored feature, in schema order."""
    features = []
    for column, kind in schema.kinds.items():
        if kind in UNMONITORED:
            continue
        if kind == "text":
            features.append((f"{column}:length", column, "numeric"))
        elif kind == "image":
            features += [(f"{column}:{name}", column, "image") for name in IMAGE_FEATURES]
        else:
            features.append((column, column, kind))
    return features


def unreadable_images(paths: pd.Series, derived: pd.DataFrame, column: str) -> pd.Series:
    # Every readable image has a width, so a path without one is a file that could not be read.
    return paths.notna() & derived[f"{column}:width"].isna()


def reference_profile(
    table: pd.DataFrame,
    schema: Schema,
    *,
    background: Background | None = WHITE,
    bins: int = 10,
    sample: int = 2000,
    seed: int = 0,
) -> dict:
    """The training split's profile, plain JSON (saved as reference.json beside the model).

    Args:
        table: the training split, typed by validation.
        bins: quantile bins per numeric feature (deciles by default).
        sample: the most values kept per numeric feature for KS, and images decoded.
        seed: for both samples, so the same split gives the same reference.
        background: what the model's images are composited onto; saved, so nights decode alike.

    Returns:
        {"format", "bins", "rows", "features": {feature: profile}}; a numeric profile has
        "edges" (training min, quantiles, max; None for the open ends, see `_bin_counts`),
        "proportions" per bin among present values,
        missing share, mean, std, min, max and a sorted "sample"; a categorical profile has the
        top categories' proportions (the rest as "(other)") and its whole vocabulary up to
        MAX_VOCABULARY categories (see `categorical_profile`). Image features also count the
        unreadable files they skipped. Add `prediction_profile(...)` as "predictions" to check
        the predicted classes too.
    """
    plain, images = split_images(schema)
    # Decoding is the slow part: the reference looks at a sample of the images only.
    image_rows = table.sample(n=sample, random_state=seed) if len(table) > sample else table
    derived = {
        "plain": derived_features(table, plain),
        "image": derived_features(image_rows, images, background=background),
    }
    rng = np.random.default_rng(seed)
    features = {}
    for feature, column, kind in monitored(schema):
        if kind == "categorical":
            features[feature] = categorical_profile(derived["plain"][feature])
        elif kind == "numeric":
            features[feature] = numeric_profile(derived["plain"][feature], bins, sample, rng)
        else:
            unreadable = unreadable_images(image_rows[column], derived["image"], column)
            values = derived["image"][feature][~unreadable]
            features[feature] = {**numeric_profile(values, bins, sample, rng), "unreadable": int(unreadable.sum())}
    return {
        "format": REFERENCE_FORMAT,
        "bins": bins,
        "rows": len(table),
        "image_background": list(background) if background is not None else None,
        "features": features,
    }


def split_images(schema: Schema) -> tuple[Schema, Schema]:
    """The schema without its image columns, and with them alone: images are decoded for a
    sample of rows only, the other columns read for every row."""
    plain = dataclasses.replace(schema, kinds={c: k for c, k in schema.kinds.items() if k != "image"})
    images = dataclasses.replace(schema, kinds={c: k for c, k in schema.kinds.items() if k == "image"})
    return plain, images


def reference_background(reference: dict) -> Background | None:
    """How the reference decoded its images; None (transparency dropped) for one from before 0.2."""
    background = reference.get("image_background")
    return tuple(background) if background is not None else None


def prediction_profile(
    predicted_classes: Sequence, *, numeric: bool = False, bins: int = 10, sample: int = 2000, seed: int = 0
) -> dict:
    """Proportions of the predicted classes (a missing prediction counts as "(missing)"), or for
    a regression model (numeric=True) a numeric profile of the predicted values."""
    if numeric:
        values = pd.Series(list(predicted_classes), dtype="float64")
        return numeric_profile(values, bins, sample, np.random.default_rng(seed))
    counts = class_counts(predicted_classes)
    total = sum(counts.values())
    return {"rows": total, "proportions": {name: count / total for name, count in counts.items()}}


def class_counts(predicted_classes: Sequence[str]) -> dict[str, int]:
    names = pd.Series(list(predicted_classes), dtype=object)
    names = names.where(names.notna(), MISSING).astype(str)
    return {str(name): int(count) for name, count in names.value_counts(sort=False).sort_index().items()}


def numeric_profile(values: pd.Series, bins: int, sample: int, rng: np.random.Generator) -> dict:
    """Quantile bins, moments and a sorted sample of one numeric (or derived) feature."""
    present = values.dropna().to_numpy(dtype="float64")
    cuts = _cut_points(present, bins)
    kept = rng.choice(present, size=sample, replace=False) if len(present) > sample else present
    return {
        "kind": "numeric",
        "rows": len(values),
        "missing_share": share_of(values.isna().sum(), len(values)),
        "edges": [None, *cuts.tolist(), None],
        "proportions": (bin_counts(present, cuts) / max(len(present), 1)).tolist(),
        **value_moments(present),
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


def bin_counts(present: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Counts per bin: (-inf, e0), [e0, e1], (e1, e2], ..., (e_last, +inf).

    Closed on the right, so a value equal to a cut point (a pile of zeros, a constant) stays in
    the bin the quantile put it in; the training minimum itself belongs to the first quantile bin.
    """
    if len(cuts) == 0:
        return np.asarray([len(present)])
    index = np.where(present < cuts[0], 0, np.maximum(np.searchsorted(cuts, present, side="left"), 1))
    return np.bincount(index, minlength=len(cuts) + 1)


def value_moments(present: np.ndarray) -> dict:
    if len(present) == 0:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present.min()),
        "max": float(present.max()),
    }


def categorical_profile(values: pd.Series) -> dict:
    """The top categories' proportions of one categorical feature, the rest as "(other)", and
    every category it had.

    Returns:
        "proportions" of the TOP_CATEGORIES most frequent (the rest as "(other)"), "distinct",
        "vocabulary": every category, sorted, or None beyond MAX_VOCABULARY (a reference.json
        from before the vocabulary has no such key), and "singletons": how many categories were
        seen once, the Good-Turing estimate of how often a fresh value is one never seen.
    """
    present = values.dropna().astype(str)
    counts = present.value_counts()
    proportions = {str(name): float(count / len(present)) for name, count in counts.iloc[:TOP_CATEGORIES].items()}
    rest = counts.iloc[TOP_CATEGORIES:].sum() / max(len(present), 1)
    proportions[OTHER] = proportions.get(OTHER, 0.0) + float(rest)
    return {
        "kind": "categorical",
        "rows": len(values),
        "missing_share": share_of(values.isna().sum(), len(values)),
        "distinct": int(len(counts)),
        "proportions": proportions,
        "vocabulary": sorted(map(str, counts.index)) if len(counts) <= MAX_VOCABULARY else None,
        "singletons": int((counts == 1).sum()),
    }


def with_training_vocabulary(profile: dict, training: dict) -> dict:
    """A categorical profile of another reference (rolling nights, a calendar window) whose
    vocabulary also holds every category of the training profile: `unseen` asks what the model
    never saw, and a rare training category absent from a week of nights is not new. A new dict.

    Where training kept no vocabulary (too many categories, or a reference.json from before it
    was kept), the profile keeps its own.
    """
    own, trained = profile.get("vocabulary"), training.get("vocabulary")
    if trained is None or own is None:
        return dict(profile)
    merged = sorted(set(own) | set(trained))
    return {**profile, "vocabulary": merged if len(merged) <= MAX_VOCABULARY else None}


def share_of(count, total: int, empty: float = 0.0) -> float:
    return float(count) / total if total else empty
