"""Features stage: fit the preprocessing on the training split only, apply it anywhere.

The fitted `Preprocessor` (pipeline/stages/preprocessor.py) is plain JSON on disk; `transform` is
NumPy, so prediction reuses it unchanged. Images stay paths here: they are decoded, resized and
scaled in tf.data (pipeline/stages/tfdata.py).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.common.columns import EXAMPLE_ID
from pipeline.common.formatting import natural_key
from pipeline.stages.dates import date_part_columns, with_date_parts
from pipeline.stages.images import WHITE, Background, is_grayscale, read_image
from pipeline.stages.preprocessor import (
    MISSING_ID,
    NUMERIC_INPUT,
    OUT_OF_VOCABULARY_ID,
    RESERVED_IDS,
    ImageShape,
    NumericScaling,
    Preprocessor,
    TextEncoding,
    input_name,
)
from pipeline.stages.schema import Schema

TOKEN = re.compile(r"\w+", re.UNICODE)


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
) -> Preprocessor:
    """Learn every statistic from the training rows: medians, scales, vocabularies, sizes.

    A date column feeds the numeric input as its parts (pipeline/stages/dates.py), scaled like
    any number.
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
        numeric=_fit_numeric(with_date_parts(train, dates), schema.columns_of("numeric") + date_part_columns(dates)),
        categorical={c: _fit_vocabulary(train[c].dropna(), max_vocabulary) for c in schema.columns_of("categorical")},
        text={c: _fit_text(train[c], max_vocabulary, max_text_length) for c in schema.columns_of("text")},
        image={c: _fit_image(train[c], image_size, image_background) for c in schema.columns_of("image")},
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
    stds = filled.std(ddof=0).replace(0.0, 1.0).fillna(1.0)
    return NumericScaling(
        tuple(columns), tuple(medians.tolist()), tuple(filled.mean().fillna(0.0).tolist()), tuple(stds.tolist())
    )


def _fit_vocabulary(values: pd.Series, max_size: int) -> tuple[str, ...]:
    counts = Counter(values.astype(str))
    return tuple(token for token, _ in counts.most_common(max_size))


def tokenize(text) -> list[str]:
    return TOKEN.findall(str(text).lower()) if isinstance(text, str) else []


def _fit_text(values: pd.Series, max_size: int, max_length: int) -> TextEncoding:
    tokens = [tokenize(text) for text in values]
    counts = Counter(token for row in tokens for token in row)
    lengths = [len(row) for row in tokens] or [1]
    # The 95th percentile keeps nearly every text whole without padding to one outlier.
    length = int(min(max_length, max(1, np.percentile(lengths, 95))))
    return TextEncoding(tuple(token for token, _ in counts.most_common(max_size)), length)


def _fit_image(paths: pd.Series, image_size: tuple[int, int] | None, background: Background) -> ImageShape:
    """The first training image decides: grayscale files train one channel, all others three."""
    first = paths.dropna().iloc[0]
    with Image.open(first) as image:
        channels = 1 if is_grayscale(image) else 3
    width, height = read_image(first, channels=channels, background=background).size  # upright (EXIF)
    if image_size:
        height, width = image_size
    return ImageShape(int(height), int(width), channels, background)


def transform(table: pd.DataFrame, preprocessor: Preprocessor) -> dict[str, np.ndarray]:
    """Model inputs keyed by input name; image inputs are arrays of file paths."""
    features = {}
    if preprocessor.numeric.columns:
        dated = with_date_parts(table, preprocessor.schema.columns_of("datetime"))
        features[NUMERIC_INPUT] = _transform_numeric(dated, preprocessor.numeric)
    for column, vocabulary in preprocessor.categorical.items():
        features[input_name("categorical", column)] = _encode(table[column], vocabulary)[:, None]
    for column, encoding in preprocessor.text.items():
        features[input_name("text", column)] = _encode_text(table[column], encoding)
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


def _encode_text(values: pd.Series, encoding: TextEncoding) -> np.ndarray:
    index = {token: i + RESERVED_IDS for i, token in enumerate(encoding.vocabulary)}
    encoded = np.zeros((len(values), encoding.length), dtype="int32")  # (rows, length), 0 pads
    for row, text in enumerate(values):
        ids = [index.get(token, OUT_OF_VOCABULARY_ID) for token in tokenize(text)[: encoding.length]]
        encoded[row, : len(ids)] = ids
    return encoded


def encode_labels(labels: pd.Series, preprocessor: Preprocessor) -> np.ndarray:
    """Class indices (-1 for a class unseen in training), or float targets for regression."""
    if not preprocessor.is_classification:
        return labels.astype("float32").to_numpy()
    index = {name: i for i, name in enumerate(preprocessor.classes)}
    return np.array([index.get(str(label), -1) for label in labels], dtype="int32")
