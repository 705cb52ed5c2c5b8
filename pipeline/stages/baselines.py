"""Baselines: what a careful user would try before a neural network, on the same split, scored
the same way.

Every evaluation fits them on the training split and scores them on the test rows the model is
scored on, so "the model beats the baseline" compares like with like. What a practitioner tunes
is tuned here too, cheaply, on the validation rows the model's early stopping reads (without
them, each baseline takes its defaults):

- `majority` (classification) or `mean` (regression): the trivial predictor;
- `linear`: logistic or ridge regression on the preprocessed features the model gets (numbers
  scaled with their missing flags, categories one-hot, images as small grayscale thumbnails),
  its regularisation chosen on the validation rows (a dense ridge's by leave-one-out);
- `tfidf_logistic`: TF-IDF (sublinear term frequency) of word unigrams and bigrams, with
  character 2-5-grams where they score better, and logistic (or ridge) regression, features and
  regularisation chosen on the validation rows, where the data has text columns;
- `gradient_boosting`: scikit-learn's HistGradientBoosting on the tabular features, categories
  native, each text column as its length in characters and words, stopped early on the
  validation rows (no images).

A baseline is fitted on at most `max_rows` training rows: on more, a seeded sample, and its
record says how many rows it saw.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pipeline.stages.features import SplitArrays
from pipeline.stages.images import image_array
from pipeline.stages.preprocessor import NUMERIC_INPUT, Preprocessor, input_name

logger = logging.getLogger(__name__)

MAX_ROWS = 50_000  # training rows a baseline is fitted on; a larger split is sampled
THUMBNAIL = 16  # side of the grayscale thumbnail the linear baseline sees of an image
C_VALUES = (1.0, 10.0)  # logistic regression's inverse regularisation, tried on held-out rows
RIDGE_ALPHAS = (0.1, 1.0, 10.0)  # sparse ridge regression's regularisation, likewise
MIN_DF_ROWS = 1_000  # from this many training rows, TF-IDF drops words seen in one text only
BOOSTING_ROUNDS, BOOSTING_PATIENCE = 500, 20  # gradient boosting's trees at most; rounds without gain
TRIVIAL = frozenset({"majority", "mean"})
DESCRIPTIONS = {
    "majority": "always the training split's most frequent class",
    "mean": "always the training split's mean",
    "linear": "logistic or ridge regression on the preprocessed features, regularisation chosen on the validation "
    "rows (a dense ridge's by leave-one-out on the training rows)",
    "tfidf_logistic": "TF-IDF of words, word pairs and (where they help) character n-grams, with logistic or ridge "
    "regression, both chosen on the validation rows",
    "gradient_boosting": "scikit-learn's HistGradientBoosting on the tabular features and text lengths, "
    "stopped early on the validation rows",
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


@dataclass(frozen=True)
class _Fit:
    """What a baseline learns from: training inputs and labels, and held-out rows to tune on."""

    inputs: _Inputs
    labels: np.ndarray
    held: _Inputs
    held_labels: np.ndarray
    preprocessor: Preprocessor


def fit_baselines(
    train: SplitArrays,
    test: SplitArrays,
    preprocessor: Preprocessor,
    examples: pd.DataFrame,
    *,
    validation: SplitArrays | None = None,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> list[BaselineOutputs]:
    """Every baseline that applies, fitted on `train`'s known rows and run on `test`'s.

    Args:
        examples: the validated rows by example id (text columns are read raw from here).
        validation: the rows regularisation, TF-IDF's features and early stopping are chosen
            on; without it (or without a known label in it), the defaults are taken.
    """
    known = train.known
    rows = np.flatnonzero(known)
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    fit = _fit(train, rows, validation, examples, preprocessor, seed)
    scored = _Inputs(test, np.arange(len(test.example_ids)), examples, preprocessor)
    results = []
    for name, make in _candidates(preprocessor).items():
        started = time.perf_counter()
        try:
            # One BLAS thread: sparse fits gain nothing from more, and threads that spin while
            # another process holds the cores made a 1 s fit take 20.
            with threadpool_limits(limits=1, user_api="blas"):
                outputs = make(fit, scored)
        except ValueError as error:  # e.g. texts without a word: the model is still evaluated
            logger.warning("baseline %s not fitted: %s", name, error)
            continue
        if outputs is None:
            continue
        seconds = time.perf_counter() - started
        results.append(BaselineOutputs(name, outputs, len(fit.inputs), int(known.sum()), seconds))
        logger.info("baseline %s fitted on %d rows in %.1f s", name, len(fit.inputs), seconds)
    return results


def _fit(
    train: SplitArrays,
    rows: np.ndarray,
    validation: SplitArrays | None,
    examples: pd.DataFrame,
    preprocessor: Preprocessor,
    seed: int,
) -> _Fit:
    """The training rows, and the validation split's known rows to tune on (at most MAX_ROWS, a
    seeded sample); without them, none: every baseline then takes its defaults."""
    held = np.flatnonzero(validation.known) if validation is not None else np.empty(0, int)
    if len(held) > MAX_ROWS:
        held = np.sort(np.random.default_rng(seed).choice(held, MAX_ROWS, replace=False))
    tuning = validation if len(held) else train
    return _Fit(
        _Inputs(train, rows, examples, preprocessor),
        train.labels[rows],
        _Inputs(tuning, held, examples, preprocessor),
        tuning.labels[held],
        preprocessor,
    )


def _candidates(preprocessor: Preprocessor) -> dict:
    schema = preprocessor.schema
    candidates = {"majority" if preprocessor.is_classification else "mean": _trivial, "linear": _linear}
    if schema.columns_of("text"):
        candidates["tfidf_logistic"] = _tfidf
    if not schema.columns_of("image") and (preprocessor.numeric.columns or preprocessor.categorical):
        candidates["gradient_boosting"] = _gradient_boosting  # text beside them counts as its lengths
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
            pictures = [_thumbnail(str(path), shape.background) for path in paths]
            blocks.append(np.stack(pictures) if pictures else np.empty((0, THUMBNAIL * THUMBNAIL), "float32"))
        return np.concatenate(blocks, axis=1) if blocks else np.empty((len(self), 0), "float32")

    def text_lengths(self) -> np.ndarray:
        """(rows, 2 x text columns): each text's length in characters and in words."""
        columns = self.preprocessor.schema.columns_of("text")
        if not columns:
            return np.empty((len(self), 0), "float32")
        table = self._examples.set_index("example_id")[columns].reindex(self.ids).fillna("").astype(str)
        lengths = [table[c].str.len() for c in columns] + [table[c].str.split().str.len() for c in columns]
        return np.stack([values.to_numpy(dtype="float32") for values in lengths], axis=1)

    def text(self) -> list[str]:
        """Each row's text columns joined, raw: TF-IDF tokenises them its own way."""
        if not len(self):
            return []  # no held-out rows (agg over no rows gives a frame, not a list)
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


def _trivial(fit: _Fit, scored: _Inputs) -> np.ndarray:
    return _constant(len(scored), fit.labels, fit.preprocessor)


def _constant(rows: int, labels: np.ndarray, preprocessor: Preprocessor) -> np.ndarray:
    """The trivial prediction for `rows` rows: the training class shares, or the training mean."""
    if preprocessor.is_classification:
        counts = np.bincount(labels, minlength=len(preprocessor.classes)).astype(float)
        share = counts / counts.sum()
        return np.tile(share, (rows, 1))
    return np.full(rows, float(np.mean(labels)))


def _linear(fit: _Fit, scored: _Inputs):
    from scipy import sparse
    from sklearn.preprocessing import OneHotEncoder

    views = (fit.inputs, fit.held, scored)
    dense = [np.concatenate([inputs.numeric(), inputs.thumbnails()], axis=1) for inputs in views]
    categories = fit.inputs.categories()
    if categories.shape[1]:
        encoder = OneHotEncoder(handle_unknown="ignore").fit(categories)
        width = len(encoder.get_feature_names_out())

        def one_hot(inputs: _Inputs):  # no held-out rows: an empty matrix (the encoder refuses 0 rows)
            return encoder.transform(inputs.categories()) if len(inputs) else sparse.csr_matrix((0, width))

        matrices = [
            sparse.hstack([sparse.csr_matrix(values), one_hot(inputs)]).tocsr() for values, inputs in zip(dense, views)
        ]
    else:
        matrices = dense
    if matrices[0].shape[1] == 0:
        return None  # text only: the TF-IDF baseline is its linear model
    return _fit_linear(fit, *matrices)


def _tfidf(fit: _Fit, scored: _Inputs):
    """Words and word pairs, and with them character n-grams where the held-out rows say they help."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [inputs.text() for inputs in (fit.inputs, fit.held, scored)]
    # Single-character words count too ("C", "R", "3"); the default pattern drops them. A word seen
    # once is noise to a linear model with enough rows.
    min_df = 2 if len(fit.inputs) >= MIN_DF_ROWS else 1
    words = TfidfVectorizer(
        ngram_range=(1, 2), min_df=min_df, sublinear_tf=True, max_features=200_000, token_pattern=r"(?u)\b\w+\b"
    )
    characters = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), min_df=min_df, sublinear_tf=True, max_features=200_000
    )
    word_matrices = [words.fit_transform(texts[0]), *(_transform(words, text) for text in texts[1:])]
    char_matrices = [characters.fit_transform(texts[0]), *(_transform(characters, text) for text in texts[1:])]
    both = [sparse.hstack([w, c]).tocsr() for w, c in zip(word_matrices, char_matrices)]
    return _fit_linear(fit, *word_matrices, alternative=both)


def _transform(vectorizer, texts: list[str]):
    """The vectorizer's matrix of the texts; an empty one for none (it refuses 0 rows)."""
    from scipy import sparse

    return vectorizer.transform(texts) if texts else sparse.csr_matrix((0, len(vectorizer.vocabulary_)))


def _fit_linear(fit: _Fit, train_x, held_x, test_x, *, alternative=None) -> np.ndarray:
    """Logistic or ridge regression, its regularisation (and, given an `alternative` set of
    matrices for the same rows, its features) chosen by the held-out rows' score."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV

    labels, preprocessor = fit.labels, fit.preprocessor
    if preprocessor.is_classification and len(np.unique(labels)) < 2:
        return _constant(test_x.shape[0], labels, preprocessor)  # one class: nothing to separate
    if not preprocessor.is_classification and not sparse.issparse(train_x) and train_x.shape[1] <= train_x.shape[0]:
        return RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(train_x, labels).predict(test_x)
    if preprocessor.is_classification:
        make = {strength: (lambda c=strength: LogisticRegression(C=c, max_iter=2000)) for strength in C_VALUES}
    else:
        # RidgeCV's leave-one-out would build a dense rows x rows matrix here (20 GB at 50,000
        # rows): a sparse solver, the alpha chosen on the held-out rows.
        make = {alpha: (lambda a=alpha: Ridge(alpha=a, solver="sparse_cg")) for alpha in RIDGE_ALPHAS}
    feature_sets = {"words": (train_x, held_x, test_x)}
    if alternative is not None:
        feature_sets["words and characters"] = tuple(alternative)
    choices = [(features, setting) for features in feature_sets for setting in make]
    # Each choice is fitted on the training rows once; the one the held-out rows score best is
    # the baseline as fitted, not fitted again.
    fitted, scores = {}, {}
    for choice in choices if len(fit.held) else choices[:1]:
        features, setting = choice
        train, held, _ = feature_sets[features]
        fitted[choice] = make[setting]().fit(train, labels)
        scores[choice] = _held_out_score(fitted[choice], held, fit) if len(fit.held) else 0.0
    best = max(fitted, key=lambda choice: scores[choice])
    if len(fitted) > 1:
        logger.info("baseline: %s, regularisation %s, chosen on %d held-out rows", *best, len(fit.held))
    model, test = fitted[best], feature_sets[best[0]][2]
    if not preprocessor.is_classification:
        return model.predict(test)
    return _all_classes(model.predict_proba(test), model.classes_, len(preprocessor.classes))


def _held_out_score(model, held_x, fit: _Fit) -> float:
    """Accuracy, or minus the mean squared error, on the held-out rows (higher is better)."""
    predicted = model.predict(held_x)
    if fit.preprocessor.is_classification:
        return float(np.mean(predicted == fit.held_labels))
    return -float(np.mean((predicted - fit.held_labels) ** 2))


def _gradient_boosting(fit: _Fit, scored: _Inputs):
    """Categories native (up to 255 values), text columns as their lengths, early stopping on the
    held-out rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    numeric_columns = len(fit.preprocessor.numeric.columns)

    def matrix(inputs: _Inputs) -> np.ndarray:
        numeric = inputs.numeric()[:, :numeric_columns]  # missing flags add nothing to trees
        return np.concatenate([numeric, inputs.categories().astype("float32"), inputs.text_lengths()], axis=1)

    train_x = matrix(fit.inputs)
    if train_x.shape[1] == 0:
        return None
    categories = len(fit.preprocessor.categorical)
    categorical = np.arange(numeric_columns, numeric_columns + categories)
    # Vocabulary ids above 255 are not categories HistGradientBoosting can take; read as numbers.
    categorical = [c for c in categorical if train_x[:, c].max(initial=0) < 255]
    options = {"categorical_features": categorical or None, "random_state": 0, "max_iter": BOOSTING_ROUNDS}
    stopping = {}
    if len(fit.held):
        options.update(early_stopping=True, n_iter_no_change=BOOSTING_PATIENCE)
        stopping = {"X_val": matrix(fit.held), "y_val": fit.held_labels}
    if not fit.preprocessor.is_classification:
        return HistGradientBoostingRegressor(**options).fit(train_x, fit.labels, **stopping).predict(matrix(scored))
    if len(np.unique(fit.labels)) < 2:
        return _constant(len(scored), fit.labels, fit.preprocessor)
    keep = np.isin(fit.held_labels, fit.labels)  # a class the trees never saw cannot score them
    if stopping and not keep.all():
        stopping = {"X_val": stopping["X_val"][keep], "y_val": fit.held_labels[keep]} if keep.any() else {}
        options["early_stopping"] = bool(stopping)
    model = HistGradientBoostingClassifier(**options).fit(train_x, fit.labels, **stopping)
    return _all_classes(model.predict_proba(matrix(scored)), model.classes_, len(fit.preprocessor.classes))


def _all_classes(probabilities: np.ndarray, seen: np.ndarray, classes: int) -> np.ndarray:
    """Probabilities over every class of the model: a class absent from the fitted rows gets 0."""
    full = np.zeros((len(probabilities), classes))
    full[:, seen] = probabilities
    return full / full.sum(axis=1, keepdims=True)  # float32 features give float32 sums off by 1e-7
