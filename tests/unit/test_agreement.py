"""Cohen's kappa from confusion counts (pipeline/stages/agreement.py) against scikit-learn's
cohen_kappa_score on the label rows the counts come from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from pipeline.stages.agreement import PAIR_COLUMNS, confusion_counts, pair_agreement


def _labels(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["example_id", "annotator", "label"])


def _random_labels(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        (f"e{k}", annotator, str(rng.choice(["cat", "dog", "bird", "7"], p=[0.5, 0.3, 0.15, 0.05])))
        for k in range(300)
        for annotator in ("ann", "bob", "cy")
        if rng.random() < 0.7
    ]
    return _labels(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kappa_from_counts_equals_scikit_learn_on_the_shared_examples(seed):
    labels = _random_labels(seed)
    pairs = pair_agreement(confusion_counts(labels))
    wide = labels.pivot(index="example_id", columns="annotator", values="label")
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert len(pairs) == 6  # three annotators, every pair both ways round
    for row in pairs.itertuples():
        both = wide[[row.annotator, row.other]].dropna()
        assert row.overlap == len(both)
        assert row.agreement == pytest.approx((both[row.annotator] == both[row.other]).mean(), abs=1e-12)
        assert row.kappa == pytest.approx(cohen_kappa_score(both[row.annotator], both[row.other]), abs=1e-12)


def test_counts_one_way_round_give_both_ways():
    counts = confusion_counts(_random_labels(3))
    one_way = counts[counts["annotator"] < counts["other"]]
    pd.testing.assert_frame_equal(pair_agreement(one_way), pair_agreement(counts))


def test_kappa_is_none_when_both_give_one_and_the_same_class_and_zero_for_chance():
    same = _labels([("a", "ann", "cat"), ("a", "bob", "cat"), ("b", "ann", "cat"), ("b", "bob", "cat")])
    (row, _) = pair_agreement(confusion_counts(same)).itertuples()
    assert (row.overlap, row.agreement, row.kappa) == (2, 1.0, None)

    # One always says cat, the other cat or dog: agreement by chance only.
    chance = _labels([("a", "ann", "cat"), ("a", "bob", "cat"), ("b", "ann", "cat"), ("b", "bob", "dog")])
    (row, _) = pair_agreement(confusion_counts(chance)).itertuples()
    assert row.kappa == pytest.approx(0.0) == cohen_kappa_score(["cat", "cat"], ["cat", "dog"])


def test_no_shared_example_no_pair():
    apart = _labels([("a", "ann", "cat"), ("b", "bob", "dog")])
    assert pair_agreement(confusion_counts(apart)).empty
    assert list(pair_agreement(confusion_counts(apart)).columns) == list(PAIR_COLUMNS)
