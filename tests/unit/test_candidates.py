"""auto's candidates: which apply to which data, and how the search keeps the best in its time."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from models.spec import InputSpec, ModelSpec
from pipeline.stages.candidates import BAG_OF_WORDS, DEFAULTS, MIN_ROWS, PIECEWISE_LINEAR, candidates, search

NUMBERS = InputSpec("numeric", "numeric", (4,), edges=((-1.0, 0.0, 1.0), (0.0, 2.0)))
OLD_NUMBERS = InputSpec("numeric", "numeric", (4,))  # a preprocessor without edges
TEXT = InputSpec("text__note", "text", (5,), vocabulary_size=9, idf=(0.0,) + (1.5,) * 8)
ISLAND = InputSpec("categorical__island", "categorical", (1,), vocabulary_size=4)


def _spec(*inputs):
    return ModelSpec(inputs, "classification", 2)


def test_auto_tries_what_applies_to_its_inputs_from_enough_rows():
    assert candidates(_spec(NUMBERS, ISLAND, TEXT), "auto", MIN_ROWS) == [DEFAULTS, PIECEWISE_LINEAR, BAG_OF_WORDS]
    assert candidates(_spec(NUMBERS, ISLAND), "auto", MIN_ROWS) == [DEFAULTS, PIECEWISE_LINEAR]
    assert candidates(_spec(TEXT), "auto", MIN_ROWS) == [DEFAULTS, BAG_OF_WORDS]
    assert candidates(_spec(OLD_NUMBERS, ISLAND), "auto", MIN_ROWS) == [DEFAULTS]


@pytest.mark.parametrize(("architecture", "rows"), [("auto", MIN_ROWS - 1), ("mlp", 50_000), ("text", 50_000)])
def test_small_data_and_named_architectures_train_the_defaults_only(architecture, rows):
    assert candidates(_spec(NUMBERS, TEXT), architecture, rows) == [DEFAULTS]


@dataclass
class _Trained:
    score: float
    history: dict = field(default_factory=lambda: {"loss": [1.0, 0.5]})
    restored_epoch: int | None = 2


def _fit(scores: dict, folders: list):
    def fit(candidate, folder: Path):
        folders.append(folder)
        return _Trained(scores[candidate.name])

    return fit


def test_the_best_validation_headline_wins_and_the_record_says_why(tmp_path):
    folders = []
    scores = {DEFAULTS.name: 0.80, PIECEWISE_LINEAR.name: 0.83, BAG_OF_WORDS.name: 0.81}
    found = search(
        [DEFAULTS, PIECEWISE_LINEAR, BAG_OF_WORDS],
        _fit(scores, folders),
        lambda trained: trained.score,
        work_dir=tmp_path,
        budget_s=600,
        headline="roc_auc",
    )

    assert found.best.score == 0.83 and found.record["chosen"] == "piecewise-linear numbers"
    assert found.record["why"] == (
        "highest validation roc_auc: 0.8300 against defaults 0.8000, bag of words alone 0.8100"
    )
    assert [entry["validation_headline"] for entry in found.record["candidates"]] == [0.80, 0.83, 0.81]
    assert found.record["candidates"][1]["changes"] == {"numeric_encoding": "piecewise_linear"}
    assert folders == [tmp_path / "defaults", tmp_path / "piecewise-linear-numbers", tmp_path / "bag-of-words-alone"]


def test_the_defaults_win_a_tie(tmp_path):
    scores = {DEFAULTS.name: 0.8, PIECEWISE_LINEAR.name: 0.8}
    found = search(
        [DEFAULTS, PIECEWISE_LINEAR],
        _fit(scores, []),
        lambda t: t.score,
        work_dir=tmp_path,
        budget_s=60,
        headline="accuracy",
    )
    assert found.record["chosen"] == "defaults"


def test_a_candidate_that_would_pass_the_budget_is_skipped_and_recorded(tmp_path):
    folders = []
    found = search(
        [DEFAULTS, PIECEWISE_LINEAR],
        _fit({DEFAULTS.name: 0.7, PIECEWISE_LINEAR.name: 0.9}, folders),
        lambda trained: trained.score,
        work_dir=tmp_path,
        budget_s=0,
        headline="accuracy",
    )
    assert folders == [tmp_path / "defaults"] and found.record["chosen"] == "defaults"
    assert found.record["candidates"][1]["name"] == "piecewise-linear numbers"
    assert "skipped" in found.record["candidates"][1]
    assert found.record["why"] == "the only candidate trained"
