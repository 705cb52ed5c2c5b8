"""Scorer: requests scored together answer exactly as each would alone.

Requests that send the same columns are validated in one call and split back per request
(pipeline/serving/scoring.py); these tests hold that to the answers of one request at a time: the
same predictions, each request's rejected rows and problem lines its own, and a request whose
columns differ refused alone.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.common.columns import SOURCE_FILE, SOURCE_ROW
from pipeline.serving.journal import Journal, read
from pipeline.serving.loader import records_frame
from pipeline.serving.requests import RequestError
from pipeline.serving.scoring import Answer, Pending, Scorer, ServedModel
from pipeline.stages import features
from pipeline.stages.schema import Schema
from pipeline.stages.validation import validate

SCHEMA = Schema(label="label", task="classification", kinds={"size": "numeric", "colour": "categorical"})


class SizeModel:
    """A stand-in for the Keras model: class 'b' the likelier the larger the scaled size."""

    def predict_on_batch(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        numbers = np.concatenate([np.asarray(v, dtype="float64").reshape(len(v), -1) for v in inputs.values()], axis=1)
        logit = numbers.sum(axis=1)
        return np.stack([-logit, logit], axis=1) / 2


@pytest.fixture
def served() -> ServedModel:
    train = pd.DataFrame(
        {"size": [float(n) for n in range(40)], "colour": ["red", "blue"] * 20, "label": ["a"] * 20 + ["b"] * 20}
    )
    train = train.assign(**{SOURCE_FILE: "train.csv", SOURCE_ROW: np.arange(len(train))})
    typed = validate(train, SCHEMA).valid
    return ServedModel("v1", features.fit(typed, SCHEMA), SizeModel())


def _request(rows: list[dict], request_id: str) -> Pending:
    return Pending(pd.DataFrame(rows), request_id=request_id)


def _rows(answer: Answer) -> list[tuple]:
    return [(row["status"], row.get("prediction"), row.get("score"), row.get("reason")) for row in answer.rows]


def test_requests_scored_together_answer_as_each_would_alone(served, tmp_path):
    requests = [
        [{"size": 3, "colour": "red"}, {"size": 35, "colour": "blue"}],
        [{"size": 7, "colour": "red"}, {"size": "heavy", "colour": "red"}, {"size": 30, "colour": "green"}],
        [{"size": 22, "colour": "blue"}],
    ]
    together = Scorer(Journal(tmp_path / "together")).score(
        served, [_request(rows, f"r{n}") for n, rows in enumerate(requests)]
    )
    alone = [
        Scorer(Journal(tmp_path / f"alone-{n}")).score(served, [_request(rows, f"r{n}")])[0]
        for n, rows in enumerate(requests)
    ]
    assert [_rows(answer) for answer in together] == [_rows(answer) for answer in alone]
    assert [answer.problems for answer in together] == [answer.problems for answer in alone]
    assert [(a.scored, a.rejected) for a in together] == [(2, 0), (2, 1), (1, 0)]
    # Each request's rows are named by its own id and row, as a request alone names them.
    assert [row["example_id"] for row in together[0].rows] == ["r0-0", "r0-1"]
    assert together[1].rows[1]["reason"] == "size: expected a number"
    assert together[1].problems == ["request: column 'size', rows 1: expected a number, found 'heavy'"]
    assert together[0].problems == [] and together[2].problems == []


def test_a_request_missing_a_column_is_refused_alone_and_the_others_answered(served, tmp_path):
    group = [
        _request([{"size": 3, "colour": "red"}], "ok-1"),
        _request([{"size": 3}], "short"),
        _request([{"size": 12, "colour": "blue"}], "ok-2"),
        _request([{"size": 5}], "short-2"),
    ]
    answers = Scorer(Journal(tmp_path / "journal")).score(served, group)
    assert [type(answer) for answer in answers] == [Answer, RequestError, Answer, RequestError]
    assert answers[1].status == 422 and "missing columns 'colour'" in str(answers[1])
    assert [answer.rows[0]["status"] for answer in (answers[0], answers[2])] == ["ok", "ok"]


def test_the_journal_keeps_each_answered_row_as_it_was_sent_for_the_night_s_drift_check(served, tmp_path):
    journal = Journal(tmp_path / "journal")
    rows = [{"size": 3, "colour": "red"}, {"size": "heavy", "colour": "red"}, {"size": 30.5, "colour": None}]
    Scorer(journal).score(served, [_request(rows, "r0")])
    journal.rotate()
    (segment,) = journal.ready()
    records = read(segment)
    # The rejected row was never answered with a prediction: it is not journaled, inputs or not.
    assert [record["example_id"] for record in records] == ["r0-0", "r0-2"]
    assert [record["inputs"] for record in records] == [{"size": 3, "colour": "red"}, {"size": 30.5, "colour": None}]
    stored = records_frame(records)
    assert json.loads(stored["inputs"][1]) == {"size": 30.5, "colour": None}
