"""Features stage: fit the preprocessing on the training split only, apply it anywhere.

The fitted preprocessor is plain JSON; `transform` is NumPy, so prediction reuses it unchanged.
Images stay paths here: they are decoded, resized and scaled in tf.data (pipeline/stages/tfdata.py).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd
from PIL import Image

from models.spec import InputSpec, ModelSpec
from pipeline.common.formatting import natural_key
from pipeline.stages.schema import Schema

MISSING_ID, OUT_OF_VOCABULARY_ID = 0, 1  # reserved ids of categorical and text encodings
RESERVED_IDS = 2
NUMERIC_INPUT = "numeric"
LABEL = "label"
TOKEN = re.compile(r"\w+", re.UNICODE)


def input_name(kind: str, column: str) -> str:
    return NUMERIC_INPUT if kind == "numeric" else f"{kind}__{column}"


def fit(
    train: pd.DataFrame,
    schema: Schema,
    *,
    max_vocabulary: int = 20_000,
    max_text_length: int = 256,
    image_size: tuple[int, int] | None = None,
) -> dict:
    """Learn every statistic from the training rows: medians, scales, vocabularies, sizes."""
    preprocessor = {
        "task": schema.task,
        "label": schema.label,
        "schema": schema.as_dict(),
        "numeric": _fit_numeric(train, schema.columns_of("numeric")),
        "categorical": {
            c: _fit_vocabulary(train[c].dropna(), max_vocabulary) for c in schema.columns_of("categorical")
        },
        "text": {c: _fit_text(train[c], max_vocabulary, max_text_length) for c in schema.columns_of("text")},
        "image": {c: _fit_image(train[c], image_size) for c in schema.columns_of("image")},
    }
    labels = train[schema.label]
    if schema.task == "classification":
        preprocessor["classes"] = sorted(labels.astype(str).unique().tolist(), key=natural_key)
    else:
        preprocessor["target_mean"] = float(labels.mean())
        preprocessor["target_std"] = float(labels.std(ddof=0)) or 1.0
    return preprocessor


def _fit_numeric(train: pd.DataFrame, columns: list[str]) -> dict:
    values = train[columns].astype("float64")
    medians = values.median().fillna(0.0)
    filled = values.fillna(medians)
    stds = filled.std(ddof=0).replace(0.0, 1.0).fillna(1.0)
    return {
        "columns": columns,
        "medians": medians.tolist(),
        "means": filled.mean().fillna(0.0).tolist(),
        "stds": stds.tolist(),
    }


def _fit_vocabulary(values: pd.Series, max_size: int) -> dict:
    counts = Counter(values.astype(str))
    return {"vocabulary": [token for token, _ in counts.most_common(max_size)]}


def tokenize(text) -> list[str]:
    return TOKEN.findall(str(text).lower()) if isinstance(text, str) else []


def _fit_text(values: pd.Series, max_size: int, max_length: int) -> dict:
    tokens = [tokenize(text) for text in values]
    counts = Counter(token for row in tokens for token in row)
    lengths = [len(row) for row in tokens] or [1]
    # The 95th percentile keeps nearly every text whole without padding to one outlier.
    length = int(min(max_length, max(1, np.percentile(lengths, 95))))
    return {"vocabulary": [token for token, _ in counts.most_common(max_size)], "length": length}


def _fit_image(paths: pd.Series, image_size: tuple[int, int] | None) -> dict:
    with Image.open(paths.dropna().iloc[0]) as first:
        width, height = first.size
        channels = len(first.getbands())
    channels = 1 if channels == 1 else 3  # palette and alpha images are read as RGB
    if image_size:
        height, width = image_size
    return {"height": int(height), "width": int(width), "channels": channels}


def transform(table: pd.DataFrame, preprocessor: dict) -> dict[str, np.ndarray]:
    """Model inputs keyed by input name; image inputs are arrays of file paths."""
    features = {}
    numeric = preprocessor["numeric"]
    if numeric["columns"]:
        features[NUMERIC_INPUT] = _transform_numeric(table, numeric)
    for column, fitted in preprocessor["categorical"].items():
        features[input_name("categorical", column)] = _encode(table[column], fitted["vocabulary"])[:, None]
    for column, fitted in preprocessor["text"].items():
        features[input_name("text", column)] = _encode_text(table[column], fitted)
    for column in preprocessor["image"]:
        features[input_name("image", column)] = np.asarray(table[column].astype(str), dtype=str)
    return features


def _transform_numeric(table: pd.DataFrame, fitted: dict) -> np.ndarray:
    values = table[fitted["columns"]].astype("float64").to_numpy()  # (rows, columns)
    missing = np.isnan(values)
    filled = np.where(missing, np.asarray(fitted["medians"]), values)
    scaled = (filled - np.asarray(fitted["means"])) / np.asarray(fitted["stds"])
    # Missing flags tell the model a value was imputed: (rows, 2 * columns).
    return np.concatenate([scaled, missing], axis=1).astype("float32")


def _encode(values: pd.Series, vocabulary: list[str]) -> np.ndarray:
    index = {token: i + RESERVED_IDS for i, token in enumerate(vocabulary)}
    return np.array(
        [
            MISSING_ID if value is None or value != value else index.get(str(value), OUT_OF_VOCABULARY_ID)
            for value in values
        ],
        dtype="int32",
    )


def _encode_text(values: pd.Series, fitted: dict) -> np.ndarray:
    index = {token: i + RESERVED_IDS for i, token in enumerate(fitted["vocabulary"])}
    encoded = np.zeros((len(values), fitted["length"]), dtype="int32")  # (rows, length), 0 pads
    for row, text in enumerate(values):
        ids = [index.get(token, OUT_OF_VOCABULARY_ID) for token in tokenize(text)[: fitted["length"]]]
        encoded[row, : len(ids)] = ids
    return encoded


def encode_labels(labels: pd.Series, preprocessor: dict) -> np.ndarray:
    """Class indices (-1 for a class unseen in training), or float targets for regression."""
    if preprocessor["task"] == "regression":
        return labels.astype("float32").to_numpy()
    index = {name: i for i, name in enumerate(preprocessor["classes"])}
    return np.array([index.get(str(label), -1) for label in labels], dtype="int32")


def model_spec(preprocessor: dict) -> ModelSpec:
    """What the model builder needs to know, read off the fitted preprocessor."""
    inputs = []
    if preprocessor["numeric"]["columns"]:
        inputs.append(InputSpec(NUMERIC_INPUT, "numeric", (2 * len(preprocessor["numeric"]["columns"]),)))
    for column, fitted in preprocessor["categorical"].items():
        inputs.append(
            InputSpec(input_name("categorical", column), "categorical", (1,), len(fitted["vocabulary"]) + RESERVED_IDS)
        )
    for column, fitted in preprocessor["text"].items():
        inputs.append(
            InputSpec(input_name("text", column), "text", (fitted["length"],), len(fitted["vocabulary"]) + RESERVED_IDS)
        )
    for column, fitted in preprocessor["image"].items():
        inputs.append(
            InputSpec(input_name("image", column), "image", (fitted["height"], fitted["width"], fitted["channels"]))
        )
    if preprocessor["task"] == "classification":
        return ModelSpec(tuple(inputs), "classification", len(preprocessor["classes"]))
    return ModelSpec(tuple(inputs), "regression", 1, preprocessor["target_mean"], preprocessor["target_std"])


def save_arrays(path, features: dict[str, np.ndarray], labels: np.ndarray | None, example_ids) -> None:
    """One split's model inputs as .npz (no pickle: object arrays are refused)."""
    arrays = dict(features)
    arrays["example_id"] = np.asarray(example_ids, dtype=str)
    if labels is not None:
        arrays[LABEL] = labels
    pickled = [name for name, values in arrays.items() if values.dtype == object]
    if pickled:
        raise TypeError(f"object arrays would be pickled: {', '.join(pickled)}")
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_arrays(path) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    example_ids = arrays.pop("example_id")
    labels = arrays.pop(LABEL, None)
    return arrays, labels, example_ids
