"""Features stage: fit the preprocessing on the training split only, apply it anywhere.

The fitted `Preprocessor` (pipeline/stages/preprocessor.py) is plain JSON on disk; `transform` is
NumPy, so prediction reuses it unchanged. Images stay paths here: they are decoded, resized and
scaled in tf.data (pipeline/stages/tfdata.py).
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.common.columns import EXAMPLE_ID
from pipeline.common.formatting import natural_key
from pipeline.errors import DataError
from pipeline.stages.dates import date_part_columns, with_date_parts
from pipeline.stages.images import WHITE, Background, header_size, is_grayscale
from pipeline.stages.preprocessor import (
    MISSING_ID,
    NUMERIC_INPUT,
    OUT_OF_VOCABULARY_ID,
    RESERVED_IDS,
    ImageShape,
    NumericScaling,
    Preprocessor,
    input_name,
)
from pipeline.stages.schema import Schema
from pipeline.stages.settings import MAX_IMAGE_SIDE
from pipeline.stages.text_encoding import encode_text, fit_text, tokenize

__all__ = ["SplitArrays", "encode_labels", "fit", "split_arrays", "tokenize", "transform"]

logger = logging.getLogger(__name__)
# Training images whose header sizes decide an image input's size: a header is a millisecond, and
# a median of 1,000 moves by a pixel or two, whatever the rest of a large data set holds.
IMAGE_SIZE_SAMPLE = 1000
MIN_CATEGORY_COUNT = 2  # training rows a category needs for an id of its own (`_fit_vocabulary`)
PIECEWISE_LINEAR_BINS = 8  # quantile bins of a number's piecewise-linear encoding (models/branches.py)


@dataclass(frozen=True)
class SplitArrays:
    """One split as the model sees it: inputs by input name, encoded labels, example ids."""

    features: dict[str, np.ndarray]
    labels: np.ndarray | None  # class indices (-1: a class unseen in training) or float targets
    example_ids: np.ndarray

    @property
    def known(self) -> np.ndarray:
        """Rows whose label can be scored: every row for regression, known classes otherwise."""
        if self.labels is None:
            return np.zeros(len(self.example_ids), bool)
        return self.labels >= 0 if self.labels.dtype.kind == "i" else np.ones(len(self.labels), bool)


def fit(
    train: pd.DataFrame,
    schema: Schema,
    *,
    max_vocabulary: int = 20_000,
    max_text_length: int = 256,
    image_size: tuple[int, int] | None = None,
    image_background: Background = WHITE,
    max_image_side: int = MAX_IMAGE_SIDE,
) -> Preprocessor:
    """Learn every statistic from the training rows: medians, scales, vocabularies, sizes.

    A date column feeds the numeric input as its parts (pipeline/stages/dates.py), scaled like
    any number. An image input is image_size (height, width) when given; otherwise the median
    training image's size, scaled down to fit max_image_side (`_image_size`).
    """
    labels = train[schema.label]
    dates = schema.columns_of("datetime")
    targets = {}
    if schema.task == "classification":
        targets["classes"] = tuple(sorted(labels.astype(str).unique().tolist(), key=natural_key))
    else:
        targets.update(target_mean=float(labels.mean()), target_std=float(labels.std(ddof=0)) or 1.0)
    return Preprocessor(
        schema=schema,
        numeric=_fit_numeric(
            with_date_parts(train, dates), schema.columns_of("numeric") + date_part_columns(dates, train)
        ),
        categorical={
            c: _fit_vocabulary(train[c].dropna(), max_vocabulary, c) for c in schema.columns_of("categorical")
        },
        text={c: fit_text(train[c], max_vocabulary, max_text_length) for c in schema.columns_of("text")},
        image={
            c: _fit_image(train[c], c, image_size, image_background, max_image_side) for c in schema.columns_of("image")
        },
        **targets,
    )


def split_arrays(part: pd.DataFrame, preprocessor: Preprocessor) -> SplitArrays:
    """A labeled split's model inputs, encoded labels and ids."""
    return SplitArrays(
        transform(part, preprocessor),
        encode_labels(part[preprocessor.label], preprocessor),
        part[EXAMPLE_ID].to_numpy(),
    )


def _fit_numeric(train: pd.DataFrame, columns: list[str]) -> NumericScaling:
    values = train[columns].astype("float64")
    medians = values.median().fillna(0.0)
    filled = values.fillna(medians)
    means = filled.mean().fillna(0.0)
    stds = filled.std(ddof=0).replace(0.0, 1.0).fillna(1.0)
    standardized = (values - means) / stds  # missing stays missing: imputed values are no quantile
    return NumericScaling(
        tuple(columns),
        tuple(medians.tolist()),
        tuple(means.tolist()),
        tuple(stds.tolist()),
        tuple(_quantile_edges(standardized[column]) for column in columns),
    )


def _quantile_edges(standardized: pd.Series) -> tuple[float, ...]:
    """PIECEWISE_LINEAR_BINS + 1 training quantiles of one column's standardised values, the
    repeated ones once (a count column has few), rounded as preprocessor.json keeps them."""
    present = standardized.dropna().to_numpy()
    if not len(present):
        return ()
    quantiles = np.quantile(present, np.linspace(0.0, 1.0, PIECEWISE_LINEAR_BINS + 1))
    return tuple(float(edge) for edge in np.unique(quantiles.round(6)))


def _fit_vocabulary(values: pd.Series, max_size: int, column: str = "") -> tuple[str, ...]:
    """The max_size most frequent categories seen at least MIN_CATEGORY_COUNT times in the training
    rows. A rarer one shares the out-of-vocabulary id with the categories training never saw: an
    embedding of its own, trained on one row, only learns that row's label."""
    counts = Counter(values.astype(str))
    vocabulary = tuple(category for category, seen in counts.most_common(max_size) if seen >= MIN_CATEGORY_COUNT)
    rare = sum(1 for seen in counts.values() if seen < MIN_CATEGORY_COUNT)
    if rare:
        logger.info(
            "column %r: %d of %d categories are seen fewer than %d times in training: out of vocabulary",
            column,
            rare,
            len(counts),
            MIN_CATEGORY_COUNT,
        )
    return vocabulary


def _fit_image(
    paths: pd.Series, column: str, image_size: tuple[int, int] | None, background: Background, max_side: int
) -> ImageShape:
    """The first training image decides the channels: grayscale files train one, all others three.
    The size is image_size, or the data's (`_image_size`); tf.data resizes every image to it."""
    paths = paths.dropna()
    with Image.open(paths.iloc[0]) as image:
        channels = 1 if is_grayscale(image) else 3
    # Upright as read_image turns it (EXIF), except for the reading before 0.2 (background None).
    height, width = image_size or _image_size(paths, column, max_side, upright=background is not None)
    return ImageShape(int(height), int(width), channels, background)


def _image_size(paths: pd.Series, column: str, max_side: int, *, upright: bool) -> tuple[int, int]:
    """(height, width): the median height and the median width of up to IMAGE_SIZE_SAMPLE training
    images spread evenly over the split, each the lower middle value when the count is even, read
    from the files' headers; scaled down, keeping its shape, so that neither side exceeds max_side.

    A median, not the first image: one 12000 x 12000 file (140 KB as a flat PNG) among 28 x 28
    digits made a 12000 x 12000 x 3 input and killed training with ResourceExhaustedError.

    Raises:
        DataError: no sampled image can be read (validation rejects such rows first).
    """
    positions = np.unique(np.linspace(0, len(paths) - 1, num=min(len(paths), IMAGE_SIZE_SAMPLE)).round().astype(int))
    sizes = [size for size in (_header_size(paths.iloc[p], upright) for p in positions) if size is not None]
    if not sizes:
        raise DataError(f"column {column!r}: none of {len(positions)} sampled training images can be read")
    height = statistics.median_low(h for _, h in sizes)
    width = statistics.median_low(w for w, _ in sizes)
    scale = min(1.0, max_side / max(height, width))
    chosen = max(1, round(height * scale)), max(1, round(width * scale))
    logger.info(
        "column %r: images are %dx%d (HEIGHTxWIDTH) for the model: the median of %d training images%s",
        column,
        *chosen,
        len(sizes),
        f", {height}x{width} scaled down to [FitPreprocessor] max_image_side = {max_side}" if scale < 1 else "",
    )
    return chosen


def _header_size(path, upright: bool) -> tuple[int, int] | None:
    try:
        return header_size(path, upright=upright)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # rows validation let through decode; an unreadable one only leaves the sample


def transform(table: pd.DataFrame, preprocessor: Preprocessor) -> dict[str, np.ndarray]:
    """Model inputs keyed by input name; image inputs are arrays of file paths."""
    features = {}
    if preprocessor.numeric.columns:
        dated = with_date_parts(table, preprocessor.schema.columns_of("datetime"))
        features[NUMERIC_INPUT] = _transform_numeric(dated, preprocessor.numeric)
    for column, vocabulary in preprocessor.categorical.items():
        features[input_name("categorical", column)] = _encode(table[column], vocabulary)[:, None]
    for column, encoding in preprocessor.text.items():
        features[input_name("text", column)] = encode_text(table[column], encoding)
    for column in preprocessor.image:
        features[input_name("image", column)] = np.asarray(table[column].astype(str), dtype=str)
    return features


def _transform_numeric(table: pd.DataFrame, scaling: NumericScaling) -> np.ndarray:
    values = table[list(scaling.columns)].astype("float64").to_numpy()  # (rows, columns)
    missing = np.isnan(values)
    filled = np.where(missing, np.asarray(scaling.medians), values)
    scaled = (filled - np.asarray(scaling.means)) / np.asarray(scaling.stds)
    # Missing flags tell the model a value was imputed: (rows, 2 * columns).
    return np.concatenate([scaled, missing], axis=1).astype("float32")


def _encode(values: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Each value's id: its place in the vocabulary after the reserved ids, out-of-vocabulary or
    missing. Looked up as a whole column (pandas' hash index), not value by value."""
    known = pd.Index(list(vocabulary), dtype=object)
    if not known.is_unique:  # a vocabulary from a hand-edited preprocessor.json: the first one wins
        known = known.drop_duplicates()
    values = pd.Series(values).reset_index(drop=True)
    positions = known.get_indexer(values.astype(str).astype(object))
    ids = np.where(positions >= 0, positions + RESERVED_IDS, OUT_OF_VOCABULARY_ID)
    return np.where(values.isna().to_numpy(), MISSING_ID, ids).astype("int32")


def encode_labels(labels: pd.Series, preprocessor: Preprocessor) -> np.ndarray:
    """Class indices (-1 for a class unseen in training), or float targets for regression."""
    if not preprocessor.is_classification:
        return labels.astype("float32").to_numpy()
    index = {name: i for i, name in enumerate(preprocessor.classes)}
    return np.array([index.get(str(label), -1) for label in labels], dtype="int32")
