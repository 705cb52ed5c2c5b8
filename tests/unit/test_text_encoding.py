"""A text as ids: its words, then the word pairs among them, with every id's idf."""

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline.stages.preprocessor import OUT_OF_VOCABULARY_ID, TextEncoding
from pipeline.stages.text_encoding import encode_text, fit_text

TEXTS = pd.Series(["a big bird", "a small bird", "big", None, "the big big bird"])


def test_pairs_in_two_training_texts_are_kept():
    fitted = fit_text(TEXTS, max_size=100, max_length=10)
    # "big bird" is in two texts; "a big", "big big" and the others in one
    assert fitted.bigrams == ("big bird",)
    assert fitted.vocabulary[0] == "big" and len(fitted.vocabulary) == 5  # every word, seen once or more


def test_a_text_is_its_words_then_its_known_pairs():
    fitted = fit_text(TEXTS, max_size=100, max_length=3)
    words = {token: i + 2 for i, token in enumerate(fitted.vocabulary)}
    pair = 2 + len(fitted.vocabulary)  # the first (only) pair's id

    encoded = encode_text(pd.Series(["big bird unseen", "bird big", None]), fitted)

    assert fitted.width == 3 + 2 and fitted.size == 2 + len(fitted.vocabulary) + 1
    assert encoded.tolist() == [
        [words["big"], words["bird"], OUT_OF_VOCABULARY_ID, pair, 0],  # "bird unseen" is no known pair
        [words["bird"], words["big"], 0, 0, 0],  # nor is "bird big"
        [0] * 5,
    ]


def test_idf_weights_every_id_as_scikit_learn_smooths_it():
    fitted = fit_text(TEXTS, max_size=100, max_length=10)
    sklearn_idf = TfidfVectorizer(token_pattern=r"\w+", ngram_range=(1, 2)).fit(TEXTS.fillna(""))
    expected = dict(zip(sklearn_idf.get_feature_names_out(), sklearn_idf.idf_, strict=True))

    assert fitted.idf[0] == 0.0  # padding weighs nothing
    assert fitted.idf[1] == pytest.approx(np.log(6 / 2) + 1, abs=1e-6)  # unknown: as a word seen once
    terms = (*fitted.vocabulary, *fitted.bigrams)
    assert fitted.idf[2:] == pytest.approx([expected[term] for term in terms], abs=1e-6)


def test_words_past_the_length_are_cut_with_their_pairs():
    fitted = fit_text(pd.Series(["a b c d e f"] * 3), max_size=100, max_length=2)
    assert fitted.length == 2 and fitted.width == 3
    ids = {token: i + 2 for i, token in enumerate(fitted.vocabulary)}
    pair = 2 + len(fitted.vocabulary) + fitted.bigrams.index("a b")
    assert encode_text(pd.Series(["a b c"]), fitted).tolist() == [[ids["a"], ids["b"], pair]]


def test_an_encoding_without_pairs_encodes_words_only():
    """A TextEncoding fitted before pairs and idf were recorded keeps its width."""
    old = TextEncoding(("big", "bird"), 3)
    assert old.width == 3 and old.size == 4
    assert encode_text(pd.Series(["big bird big bird"]), old).tolist() == [[2, 3, 2]]
