"""Baselines: what a user would try before a neural network, on the same split, scored the same way.

Every evaluation fits them on the training split and scores them on the test rows the model is
scored on, so "the model beats the baseline" compares like with like:

- `majority` (classification) or `mean` (regression): the trivial predictor;
- `linear`: logistic or ridge regression on the preprocessed features the model gets (numbers
  scaled with their missing flags, categories one-hot, images as small grayscale thumbnails);
- `tfidf_logistic`: TF-IDF of word unigrams and bigrams with logistic (or ridge) regression,
  where the data has text columns;
- `gradient_boosting`: scikit-learn's HistGradientBoosting on tabular data (no text or image).

A baseline is fitted on at most `max_rows` training rows: on more, a seeded sample, and its
record says how many rows it saw.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.stages.features import SplitArrays
from pipeline.stages.images import image_array
from pipeline.stages.preprocessor import NUMERIC_INPUT, Preprocessor, input_name

logger = logging.getLogger(__name__)

MAX_ROWS = 50_000  # training rows a baseline is fitted on; a larger split is sampled
THUMBNAIL = 16  # side of the grayscale thumbnail the linear baseline sees of an image
TRIVIAL = frozenset({"majority", "mean"})
DESCRIPTIONS = {
    "majority": "always the training split's most frequent class",
    "mean": "always the training split's mean",
    "linear": "logistic or ridge regression on the preprocessed features",
    "tfidf_logistic": "TF-IDF of words and word pairs, with logistic or ridge regression",
    "gradient_boosting": "scikit-learn's HistGradientBoosting on the tabular features",
}


@dataclass(frozen=True)
class BaselineOutputs:
    """One baseline's test outputs: class probabilities (rows, classes) or predicted values (rows,)."""

    name: str
    outputs: np.ndarray
    fitted_rows: int  # training rows it was fitted on
    training_rows: int  # training rows there were
    seconds: float

    @property
    def sampled(self) -> bool:
        return self.fitted_rows < self.training_rows


def fit_baselines(
    train: SplitArrays,
    test: SplitArrays,
    preprocessor: Preprocessor,
    examples: pd.DataFrame,
    *,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> list[BaselineOutputs]:
    """Every baseline that applies, fitted on `train`'s known rows and run on `test`'s.

    Args:
        examples: the validated rows by example id (text columns are read raw from here).
    """
    known = train.known
    rows = np.flatnonzero(known)
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    fitted = _Inputs(train, rows, examples, preprocessor)
    scored = _Inputs(test, np.arange(len(test.example_ids)), examples, preprocessor)
    labels = train.labels[rows]
    results = []
    for name, make in _candidates(preprocessor).items():
        started = time.perf_counter()
        try:
            outputs = make(fitted, scored, labels, preprocessor)
        except ValueError as error:  # e.g. texts without a word: the model is still evaluated
            logger.warning("baseline %s not fitted: %s", name, error)
            continue
        if outputs is None:
            continue
        seconds = time.perf_counter() - started
        results.append(BaselineOutputs(name, outputs, len(rows), int(known.sum()), seconds))
        logger.info("baseline %s fitted on %d rows in %.1f s", name, len(rows), seconds)
    return results


def _candidates(preprocessor: Preprocessor) -> dict:
    schema = preprocessor.schema
    candidates = {"majority" if preprocessor.is_classification else "mean": _trivial, "linear": _linear}
    if schema.columns_of("text"):
        candidates["tfidf_logistic"] = _tfidf
    elif not schema.columns_of("image"):
        candidates["gradient_boosting"] = _gradient_boosting
    return candidates


class _Inputs:
    """One split's rows as the baselines read them, each view built once when first asked for."""

    def __init__(self, arrays: SplitArrays, rows: np.ndarray, examples: pd.DataFrame, preprocessor: Preprocessor):
        self.arrays, self.rows, self.preprocessor = arrays, rows, preprocessor
        self.ids = arrays.example_ids[rows]
        self._examples = examples
        self._tabular: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def numeric(self) -> np.ndarray:
        """(rows, 2 x numeric columns): scaled values and missing flags, as the model gets them."""
        values = self.arrays.features.get(NUMERIC_INPUT)
        return values[self.rows] if values is not None else np.empty((len(self), 0), "float32")

    def categories(self) -> np.ndarray:
        """(rows, categorical columns) of vocabulary ids (0 missing, 1 out of vocabulary)."""
        columns = [
            self.arrays.features[input_name("categorical", c)][self.rows, 0] for c in self.preprocessor.categorical
        ]
        return np.stack(columns, axis=1) if columns else np.empty((len(self), 0), "int32")

    def thumbnails(self) -> np.ndarray:
        """(rows, images x THUMBNAIL^2) grayscale pixels in [0, 1], read as the model reads them."""
        blocks = []
        for column, shape in self.preprocessor.image.items():
            paths = self.arrays.features[input_name("image", column)][self.rows]
            blocks.append(np.stack([_thumbnail(str(path), shape.background) for path in paths]))
        return np.concatenate(blocks, axis=1) if blocks else np.empty((len(self), 0), "float32")

    def text(self) -> list[str]:
        """Each row's text columns joined, raw: TF-IDF tokenises them its own way."""
        columns = self.preprocessor.schema.columns_of("text")
        table = self._examples.set_index("example_id")[columns].reindex(self.ids)
        return table.fillna("").astype(str).agg(" ".join, axis=1).tolist()


def _thumbnail(path: str, background) -> np.ndarray:
    from PIL import Image

    try:
        pixels = image_array(path, channels=1, background=background, draft=THUMBNAIL)[..., 0]
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return np.zeros(THUMBNAIL * THUMBNAIL, "float32")
    small = Image.fromarray(pixels).resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype="float32").reshape(-1) / 255.0


def _trivial(fitted: _Inputs, scored: _Inputs, labels: np.ndarray, preprocessor: Preprocessor) -> np.ndarray:
    return _constant(len(scored), labels, preprocessor)


def _constant(rows: int, labels: np.ndarray, preprocessor: Preprocessor) -> np.ndarray:
    """The trivial prediction for `rows` rows: the training class shares, or the training mean."""
    if preprocessor.is_classification:
        counts = np.bincount(labels, minlength=len(preprocessor.classes)).astype(float)
        share = counts / counts.sum()
        return np.tile(share, (rows, 1))
    return np.full(rows, float(np.mean(labels)))


def _linear(fitted: _Inputs, scored: _Inputs, labels: np.ndarray, preprocessor: Preprocessor):
    from scipy import sparse
    from sklearn.preprocessing import OneHotEncoder

    dense = [np.concatenate([inputs.numeric(), inputs.thumbnails()], axis=1) for inputs in (fitted, scored)]
    categories = fitted.categories()
    if categories.shape[1]:
        encoder = OneHotEncoder(handle_unknown="ignore").fit(categories)
        train_x = sparse.hstack([sparse.csr_matrix(dense[0]), encoder.transform(categories)]).tocsr()
        test_x = sparse.hstack([sparse.csr_matrix(dense[1]), encoder.transform(scored.categories())]).tocsr()
    else:
        train_x, test_x = dense
    if train_x.shape[1] == 0:
        return None  # text only: the TF-IDF baseline is its linear model
    return _fit_linear(train_x, test_x, labels, preprocessor)


def _tfidf(fitted: _Inputs, scored: _Inputs, labels: np.ndarray, preprocessor: Preprocessor):
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Single-character words count too ("C", "R", "3"); the default pattern drops them.
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), min_df=1, sublinear_tf=True, max_features=200_000, token_pattern=r"(?u)\b\w+\b"
    )
    train_x = vectorizer.fit_transform(fitted.text())
    return _fit_linear(train_x, vectorizer.transform(scored.text()), labels, preprocessor)


def _fit_linear(train_x, test_x, labels: np.ndarray, preprocessor: Preprocessor) -> np.ndarray:
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression, RidgeCV

    if not preprocessor.is_classification:
        if sparse.issparse(train_x) or train_x.shape[1] > train_x.shape[0]:
            # RidgeCV's leave-one-out would build a dense rows x rows matrix here (20 GB at
            # 50,000 rows): a sparse solver, with the alpha chosen on a held-out fifth.
            return _sparse_ridge(train_x, test_x, labels)
        return RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(train_x, labels).predict(test_x)
    if len(np.unique(labels)) < 2:
        return _constant(test_x.shape[0], labels, preprocessor)  # one class: nothing to separate
    model = LogisticRegression(max_iter=2000).fit(train_x, labels)
    return _all_classes(model.predict_proba(test_x), model.classes_, len(preprocessor.classes))


def _sparse_ridge(train_x, test_x, labels: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import train_test_split

    fit_x, check_x, fit_y, check_y = train_test_split(train_x, labels, test_size=0.2, random_state=0)
    errors = {
        alpha: np.mean((Ridge(alpha=alpha, solver="sparse_cg").fit(fit_x, fit_y).predict(check_x) - check_y) ** 2)
        for alpha in (0.1, 1.0, 10.0)
    }
    best = min(errors, key=errors.get)
    return Ridge(alpha=best, solver="sparse_cg").fit(train_x, labels).predict(test_x)


def _gradient_boosting(fitted: _Inputs, scored: _Inputs, labels: np.ndarray, preprocessor: Preprocessor):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    def matrix(inputs: _Inputs) -> np.ndarray:
        numeric = inputs.numeric()[:, : len(preprocessor.numeric.columns)]  # flags add nothing to trees
        return np.concatenate([numeric, inputs.categories().astype("float32")], axis=1)

    train_x = matrix(fitted)
    if train_x.shape[1] == 0:
        return None
    categorical = np.arange(len(preprocessor.numeric.columns), train_x.shape[1])
    # Vocabulary ids above 255 are not categories HistGradientBoosting can take; read as numbers.
    categorical = [c for c in categorical if train_x[:, c].max(initial=0) < 255]
    options = {"categorical_features": categorical or None, "random_state": 0}
    if not preprocessor.is_classification:
        return HistGradientBoostingRegressor(**options).fit(train_x, labels).predict(matrix(scored))
    if len(np.unique(labels)) < 2:
        return _constant(len(scored), labels, preprocessor)
    model = HistGradientBoostingClassifier(**options).fit(train_x, labels)
    return _all_classes(model.predict_proba(matrix(scored)), model.classes_, len(preprocessor.classes))


def _all_classes(probabilities: np.ndarray, seen: np.ndarray, classes: int) -> np.ndarray:
    """Probabilities over every class of the model: a class absent from the fitted rows gets 0."""
    full = np.zeros((len(probabilities), classes))
    full[:, seen] = probabilities
    return full / full.sum(axis=1, keepdims=True)  # float32 features give float32 sums off by 1e-7
