"""MLflow's four JSON shapes and CSV as rows, and one clear 4xx for every body that is none of them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.serving.requests import RequestError, rows_from_body

ROWS = [{"island": "Biscoe", "bill": 39.1}, {"island": "Dream", "bill": None}]
EXPECTED = pd.DataFrame({"island": ["Biscoe", "Dream"], "bill": [39.1, None]}, dtype=object)


def _rows(document, content_type="application/json") -> pd.DataFrame:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return rows_from_body(body, content_type, max_rows=100)


@pytest.mark.parametrize(
    "document",
    [
        {"dataframe_split": {"columns": ["island", "bill"], "data": [["Biscoe", 39.1], ["Dream", None]]}},
        {
            "dataframe_split": {
                "index": [7, 8],
                "columns": ["island", "bill"],
                "data": [["Biscoe", 39.1], ["Dream", None]],
            }
        },
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"inputs": ROWS},
        {"inputs": {"island": ["Biscoe", "Dream"], "bill": [39.1, None]}},
    ],
    ids=["split", "split-with-index", "records", "instances", "inputs-records", "inputs-columns"],
)
def test_every_shape_gives_the_same_rows(document):
    frame = _rows(document)
    assert list(frame.columns) == ["island", "bill"]
    assert frame["island"].tolist() == ["Biscoe", "Dream"]
    assert frame["bill"].iloc[0] == 39.1 and pd.isna(frame["bill"].iloc[1])


def test_csv_with_a_header():
    frame = _rows(b"island,bill\nBiscoe,39.1\nDream,\n", "text/csv; charset=utf-8")
    assert frame["island"].tolist() == ["Biscoe", "Dream"]
    assert frame["bill"].iloc[0] == "39.1" and pd.isna(frame["bill"].iloc[1])  # text, typed by validation


def test_records_with_different_keys_keep_every_column():
    frame = _rows({"dataframe_records": [{"a": 1}, {"b": 2}]})
    assert list(frame.columns) == ["a", "b"]
    assert pd.isna(frame["b"].iloc[0]) and frame["b"].iloc[1] == 2


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"{not json", "application/json", 400, "not JSON"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (json.dumps({"data": [[1]]}).encode(), "application/json", 400, "unknown field 'data'"),
        (json.dumps({}).encode(), "application/json", 400, "found none of them"),
        (json.dumps({"instances": ROWS, "inputs": ROWS}).encode(), "application/json", 400, "instances and inputs"),
        (json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}).encode(), "", 400, "data[0] has 2"),
        (json.dumps({"dataframe_split": [[1]]}).encode(), "", 400, '"columns"'),
        (json.dumps({"dataframe_records": [1, 2]}).encode(), "", 400, "list of rows"),
        (json.dumps({"inputs": {"a": [1, 2], "b": [1]}}).encode(), "", 400, "different lengths"),
        (json.dumps({"instances": [{"a": {"x": 1}}]}).encode(), "", 400, "column 'a' holds a JSON object"),
        (json.dumps({"instances": ROWS, "params": {"k": 1}}).encode(), "", 400, "no inference parameters"),
        (b"a,b\n1,2\n", "application/xml", 415, "application/json"),
        (json.dumps({"instances": [{"a": 1}] * 101}).encode(), "", 413, "at most 100"),
        (json.dumps({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}).encode(), "", 400, "twice"),
    ],
)
def test_a_body_that_is_no_shape_is_one_clear_error(body, content_type, status, words):
    with pytest.raises(RequestError) as caught:
        rows_from_body(body, content_type, max_rows=100)
    assert caught.value.status == status
    assert words in caught.value.message
    assert "\n" not in caught.value.message
