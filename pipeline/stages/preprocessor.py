"""The fitted preprocessor: everything the features stage learned from the training split.

Frozen and typed, with the training schema inside it, so a model folder carries one copy of the
schema. `to_json()` writes the layout every preprocessor.json has had since the first release,
and `from_json()` reads all of them: the file is the contract between training and the nights
scored months later.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from models.spec import InputSpec, ModelSpec
from pipeline.stages.contract import Schema

MISSING_ID, OUT_OF_VOCABULARY_ID = 0, 1  # reserved ids of categorical and text encodings
RESERVED_IDS = 2
NUMERIC_INPUT = "numeric"


# The characters TensorFlow's scope names accept after the first, less `/` (Keras refuses it in a
# layer's name) and `\` (a graph node refuses it): checked on Keras 3 with the TF backend.
_KERAS_NAME = re.compile(r"[A-Za-z0-9_.>-]")


def input_name(kind: str, column: str) -> str:
    """The Keras input (and feature array) a column feeds: all numeric columns share one.

    Any column name a file can hold makes a valid Keras name: a space, an accent, a tab or a `/`
    becomes `_`, and such a name gains the start of its column's SHA-1 so that `a b` and `a/b`
    stay two inputs. Names Keras always took are unchanged, so older models load as they were.
    The function is the whole mapping: nightly scoring computes the same names from the
    preprocessor's columns.
    """
    if kind == "numeric":
        return NUMERIC_INPUT
    safe = "".join(character if _KERAS_NAME.fullmatch(character) else "_" for character in column)
    if safe != column:
        safe += "_" + hashlib.sha1(column.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{kind}__{safe}"


@dataclass(frozen=True)
class NumericScaling:
    """Numeric columns: imputed with the training median, then standardised."""

    columns: tuple[str, ...] = ()
    medians: tuple[float, ...] = ()
    means: tuple[float, ...] = ()  # of the imputed values
    stds: tuple[float, ...] = ()  # 1.0 where a column is constant
    # Per column, the training quantiles of its standardised values (distinct, ascending): the bin
    # edges of a piecewise-linear encoding (models/branches.py). Empty before they were recorded.
    edges: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class TextEncoding:
    """A text column as ids: its first `length` words, then the word pairs among them
    (pipeline/stages/text_encoding.py lays them out).

    A preprocessor fitted before word pairs and inverse document frequencies were recorded has
    neither, and its texts are encoded as words only, as its model was trained.
    """

    vocabulary: tuple[str, ...]  # most frequent tokens first; id = position + RESERVED_IDS
    length: int  # tokens kept per text, the rest cut; shorter texts padded with MISSING_ID
    # Word pairs ("new york") seen in at least two training texts, the most widespread first;
    # id = position + RESERVED_IDS + len(vocabulary).
    bigrams: tuple[str, ...] = ()
    # Smoothed inverse document frequency of every id, the reserved ones first (0 for padding):
    # the weights of the model's bag of words (models/branches.py `bag_of_words`).
    idf: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        """Number of ids: reserved, words and word pairs."""
        return RESERVED_IDS + len(self.vocabulary) + len(self.bigrams)

    @property
    def width(self) -> int:
        """Ids per text: `length` word slots, then `length - 1` pair slots when there are pairs."""
        return self.length + (self.length - 1 if self.bigrams else 0)


@dataclass(frozen=True)
class ImageShape:
    height: int
    width: int
    channels: int  # 1 (grayscale) or 3
    # What transparency is composited onto (pipeline/stages/images.py); None in preprocessors of
    # releases before 0.2, which dropped it: their models are scored the way they were trained.
    background: tuple[int, int, int] | None = (255, 255, 255)


@dataclass(frozen=True)
class Preprocessor:
    schema: Schema
    numeric: NumericScaling = field(default_factory=NumericScaling)
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> vocabulary
    text: dict[str, TextEncoding] = field(default_factory=dict)
    image: dict[str, ImageShape] = field(default_factory=dict)
    classes: tuple[str, ...] = ()  # classification: class names in natural order
    target_mean: float = 0.0  # regression: the training target's mean and spread
    target_std: float = 1.0

    @property
    def task(self) -> str:
        return self.schema.task

    @property
    def label(self) -> str:
        return self.schema.label

    @property
    def is_classification(self) -> bool:
        return self.schema.task == "classification"

    def model_spec(self) -> ModelSpec:
        """What the model builder needs to know: one input per array `transform` makes."""
        inputs = []
        if self.numeric.columns:
            inputs.append(
                InputSpec(NUMERIC_INPUT, "numeric", (2 * len(self.numeric.columns),), edges=self.numeric.edges)
            )
        for column, vocabulary in self.categorical.items():
            inputs.append(
                InputSpec(input_name("categorical", column), "categorical", (1,), len(vocabulary) + RESERVED_IDS)
            )
        for column, encoding in self.text.items():
            name = input_name("text", column)
            inputs.append(InputSpec(name, "text", (encoding.width,), encoding.size, idf=encoding.idf))
        for column, shape in self.image.items():
            inputs.append(InputSpec(input_name("image", column), "image", (shape.height, shape.width, shape.channels)))
        if self.is_classification:
            return ModelSpec(tuple(inputs), "classification", len(self.classes))
        return ModelSpec(tuple(inputs), "regression", 1, self.target_mean, self.target_std)

    def to_json(self) -> dict:
        document = {
            "task": self.task,  # also inside "schema"; kept for readers of older releases
            "label": self.label,
            "schema": self.schema.as_dict(),
            "numeric": _numeric_json(self.numeric),
            "categorical": {
                column: {"vocabulary": list(vocabulary)} for column, vocabulary in self.categorical.items()
            },
            "text": {column: _text_json(encoding) for column, encoding in self.text.items()},
            "image": {column: _image_json(shape) for column, shape in self.image.items()},
        }
        if self.is_classification:
            document["classes"] = list(self.classes)
        else:
            document.update(target_mean=self.target_mean, target_std=self.target_std)
        return document

    @classmethod
    def from_json(cls, document: dict) -> Preprocessor:
        numeric = document.get("numeric", {})
        return cls(
            schema=Schema.from_dict(document["schema"]),
            numeric=NumericScaling(
                *(tuple(numeric.get(name, ())) for name in ("columns", "medians", "means", "stds")),
                edges=tuple(tuple(float(edge) for edge in column) for column in numeric.get("edges", ())),
            ),
            categorical={
                column: tuple(fitted["vocabulary"]) for column, fitted in document.get("categorical", {}).items()
            },
            text={column: _text_encoding(fitted) for column, fitted in document.get("text", {}).items()},
            image={column: _image_shape(fitted) for column, fitted in document.get("image", {}).items()},
            classes=tuple(document.get("classes", ())),
            target_mean=float(document.get("target_mean", 0.0)),
            target_std=float(document.get("target_std", 1.0)),
        )


def _numeric_json(scaling: NumericScaling) -> dict:
    document = {name: list(getattr(scaling, name)) for name in ("columns", "medians", "means", "stds")}
    if scaling.edges:
        document["edges"] = [list(column) for column in scaling.edges]
    return document


def _text_json(encoding: TextEncoding) -> dict:
    document = {"vocabulary": list(encoding.vocabulary), "length": encoding.length}
    if encoding.bigrams:
        document["bigrams"] = list(encoding.bigrams)
    if encoding.idf:
        document["idf"] = [round(weight, 6) for weight in encoding.idf]
    return document


def _text_encoding(document: dict) -> TextEncoding:
    return TextEncoding(
        tuple(document["vocabulary"]),
        int(document["length"]),
        tuple(document.get("bigrams", ())),
        tuple(float(weight) for weight in document.get("idf", ())),
    )


def _image_json(shape: ImageShape) -> dict:
    document = {"height": shape.height, "width": shape.width, "channels": shape.channels}
    if shape.background is not None:
        document["background"] = list(shape.background)
    return document


def _image_shape(document: dict) -> ImageShape:
    background = document.get("background")
    return ImageShape(
        int(document["height"]),
        int(document["width"]),
        int(document["channels"]),
        tuple(int(level) for level in background) if background is not None else None,
    )
