"""A text column as ids: its words, then the word pairs among them.

The words, in order, feed the model's sequence branch; every id also counts in its bag of words,
TF-IDF weighted by the idf recorded here (models/branches.py `bag_of_words`): the features of a
tuned linear text model (scikit-learn's word 1-2-grams), so the model can be that model.

Layout of one text's ids (`TextEncoding.width`): `length` word slots (0 pads, 1 an unknown word),
then `length - 1` pair slots holding the known pairs, 0 padding the rest.

Character n-grams were tried as a third part and left out: on Debian's package sections they
took the model from 0.835 to 0.816 test accuracy, and a logistic regression on the same ids from
0.838 to 0.820-0.833, though the validation rows preferred them (docs/performance.md).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.stages.preprocessor import OUT_OF_VOCABULARY_ID, RESERVED_IDS, TextEncoding

TOKEN = re.compile(r"\w+", re.UNICODE)
MIN_TEXTS = 2  # a word pair is in the vocabulary once this many training texts hold it


def tokenize(text) -> list[str]:
    return TOKEN.findall(str(text).lower()) if isinstance(text, str) else []


def fit_text(values: pd.Series, max_size: int, max_length: int) -> TextEncoding:
    """Vocabularies of words and word pairs (each at most max_size), the words kept and idf."""
    tokens = [tokenize(text) for text in values]
    lengths = [len(row) for row in tokens] or [1]
    # The 95th percentile keeps nearly every text whole without padding to one outlier.
    length = int(min(max_length, max(1, np.percentile(lengths, 95))))
    vocabulary = tuple(token for token, _ in Counter(token for row in tokens for token in row).most_common(max_size))
    bigrams = _widespread((pairs(row) for row in tokens), max_size) if length > 1 else ()
    return TextEncoding(vocabulary, length, bigrams, _idf(tokens, vocabulary, bigrams))


def encode_text(values: pd.Series, encoding: TextEncoding) -> np.ndarray:
    """(rows, encoding.width) int32 ids, laid out as the module docstring says."""
    words = {token: i + RESERVED_IDS for i, token in enumerate(encoding.vocabulary)}
    pair_ids = {pair: RESERVED_IDS + len(encoding.vocabulary) + i for i, pair in enumerate(encoding.bigrams)}
    pair_start = encoding.length
    encoded = np.zeros((len(values), encoding.width), dtype="int32")  # 0 pads
    for row, text in enumerate(values):
        kept = tokenize(text)[: encoding.length]
        encoded[row, : len(kept)] = [words.get(token, OUT_OF_VOCABULARY_ID) for token in kept]
        if pair_ids:
            found = [pair_ids[pair] for pair in pairs(kept) if pair in pair_ids]
            encoded[row, pair_start : pair_start + len(found)] = found
    return encoded


def pairs(words: list[str]) -> list[str]:
    """Adjacent words joined by a space: `new york`."""
    return [f"{first} {second}" for first, second in zip(words, words[1:], strict=False)]


def _widespread(per_text: Iterable[Iterable[str]], max_size: int) -> tuple[str, ...]:
    """Terms in at least MIN_TEXTS texts, the most widespread first: a pair seen in one training
    text cannot generalise, and keeping them would double the vocabulary with noise."""
    texts = Counter(term for terms in per_text for term in set(terms))
    return tuple(term for term, seen in texts.most_common(max_size) if seen >= MIN_TEXTS)


def _idf(tokens: list[list[str]], vocabulary: tuple[str, ...], bigrams: tuple[str, ...]) -> tuple[float, ...]:
    """Smoothed inverse document frequency of every id, as scikit-learn's TfidfVectorizer computes
    it: ln((1 + texts) / (1 + texts holding the term)) + 1. Padding weighs 0; an unknown word as
    much as a word seen in one text. Rounded to 6 decimals, as preprocessor.json keeps them, so the
    preprocessor read back is the one fitted."""
    families = [
        (vocabulary, Counter(term for row in tokens for term in set(row))),
        (bigrams, Counter(pair for row in tokens for pair in set(pairs(row)))),
    ]
    frequencies = np.array([texts[term] for terms, texts in families for term in terms], dtype="float64")
    weights = np.log((1 + len(tokens)) / (1 + frequencies)) + 1
    rare = float(np.log((1 + len(tokens)) / 2) + 1)
    return tuple(round(weight, 6) for weight in (0.0, rare, *weights.tolist()))
