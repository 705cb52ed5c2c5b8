"""The scoring path's column-at-a-time versions give what the value-at-a-time code gave."""

import json

import numpy as np
import pandas as pd

from pipeline.stages.features import MISSING_ID, OUT_OF_VOCABULARY_ID, RESERVED_IDS, _encode
from pipeline.stages.prediction import probability_texts
from pipeline.stages.schema import parse_numbers


def test_probability_texts_are_json_dumps_of_each_row_rounded_to_six_digits():
    rng = np.random.default_rng(0)
    outputs = rng.dirichlet([0.05] * 4, size=5_000)
    outputs[:3] = [[1, 0, 0, 0], [1e-5, 1e-4, 1e-7, 1 - 1.11e-4], [0.1, 0.2, 0.3, 0.4]]
    classes = ["a", 'quo"te', "é", "10"]
    expected = [json.dumps(dict(zip(classes, np.round(row, 6).tolist()))) for row in outputs]
    assert probability_texts(outputs, classes).tolist() == expected
    assert json.loads(probability_texts(outputs[1:2], classes)[0]) == {
        "a": 1e-05,
        'quo"te': 0.0001,
        "é": 0.0,
        "10": 0.999889,
    }


def test_categories_are_encoded_as_their_text_with_missing_and_unknown_ids():
    vocabulary = ("a", "1", "2.0", "é", "b")
    values = pd.Series(["a", "b", None, np.nan, "zz", 1, 2.0, "1", pd.NA, "é", " a"], dtype=object, index=range(5, 16))
    first = RESERVED_IDS
    assert _encode(values, vocabulary).tolist() == [
        first, first + 4, MISSING_ID, MISSING_ID, OUT_OF_VOCABULARY_ID, first + 1, first + 2, first + 1,
        MISSING_ID, first + 3, OUT_OF_VOCABULARY_ID,
    ]  # fmt: skip
    assert _encode(pd.Series(["b", None], dtype="string[pyarrow]"), vocabulary).tolist() == [first + 4, MISSING_ID]


def test_plain_numbers_parse_as_the_text_path_does():
    rng = np.random.default_rng(1)
    values = (rng.normal(size=20_000) * 10.0 ** rng.integers(-30, 30, 20_000)).tolist()
    texts = [repr(v) for v in values] + [f"{v:.3e}" for v in values[:5_000]] + ["-0", "inf", "+3", ".5"]
    parsed = parse_numbers(pd.Series(texts))
    assert parsed.tolist()[: len(values)] == values
    assert parsed.tolist()[-4:] == [0.0, float("inf"), 3.0, 0.5] and str(parsed.iloc[-4]) == "0.0"
    # One value the fast parser refuses sends the column down the text path: spaces, 1,234, words.
    assert parse_numbers(pd.Series([" 1.5", "1,234", "seven", None])).tolist()[:2] == [1.5, 1234.0]
    assert np.isnan(parse_numbers(pd.Series([" 1.5", "1,234", "seven", None])).iloc[2])
