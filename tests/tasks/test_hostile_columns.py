"""Any column name a file can hold trains and scores (issue 19, item 3): a space, an accent, a `/`
or a tab in a categorical or text column's name once crashed TrainModel inside Keras ("not a
valid scope name"), and an id column named `example_id` is the id, not a feature. On both databases."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from luigi.execution_summary import LuigiStatusCode

from pipeline.common.columns import EXAMPLE_ID
from pipeline.stages.preprocessor import input_name
from pipeline.store import database
from tasks import Nightly, RegisterModel
from tests.tasks.support import build, fresh

NIGHT = datetime.date(2026, 11, 4)
# Each of these names crashed Keras as part of an input or layer name.
NAMES = {"colour": "customer type", "island": "île/région", "note": "what\tthey said"}


def _table(tabular_csv) -> pd.DataFrame:
    table = pd.read_csv(tabular_csv)
    rng = np.random.default_rng(1)
    words = np.array(["fine", "late", "broken", "as", "promised", "box", "torn", "quick"])
    table["note"] = [" ".join(rng.choice(words, 6)) for _ in range(len(table))]
    table.insert(0, EXAMPLE_ID, [f"e{index:04d}" for index in range(len(table))])
    return table.rename(columns=NAMES)


def test_column_names_keras_refused_train_and_score_and_example_id_is_the_id(
    configure, tabular_csv, database_url, tmp_path
):
    table = _table(tabular_csv)
    raw = tmp_path / "raw" / "named.csv"
    table.to_csv(raw, index=False)
    configure(database_url=database_url, dataset={"path": str(raw), "id_column": EXAMPLE_ID})
    assert build(RegisterModel()).status == LuigiStatusCode.SUCCESS

    night = table.drop(columns="label").head(20).assign(**{EXAMPLE_ID: lambda rows: "n" + rows[EXAMPLE_ID]})
    incoming = tmp_path / "data" / "incoming" / NIGHT.isoformat()
    incoming.mkdir(parents=True)
    night.to_csv(incoming / "night.csv", index=False)
    assert build(fresh(Nightly, date=NIGHT)).status == LuigiStatusCode.SUCCESS

    with database.connect(database_url).connect() as connection:
        stored = connection.execute(
            sa.text("SELECT example_id FROM predictions WHERE batch_date = :d ORDER BY example_id"), {"d": NIGHT}
        ).scalars()
        assert list(stored) == sorted(night[EXAMPLE_ID])  # the file's ids, not hashes of the rows


def test_input_names_are_valid_keras_names_distinct_and_stable():
    # Names Keras always took keep their input name: models trained before still load.
    assert input_name("categorical", "island") == "categorical__island"
    assert input_name("text", "a.b-c>d_e") == "text__a.b-c>d_e"
    safe = [input_name("categorical", name) for name in ("a b", "a/b", "a\tb", "á b", "a\\b", "")]
    assert len(set(safe)) == len(safe)
    assert all(name.startswith("categorical__a_b_") for name in safe[:3])
    for name in safe:
        assert all(character.isascii() and (character.isalnum() or character in "_.>-") for character in name)
    assert input_name("categorical", "a b") == safe[0]  # a function of the name alone: night maps it back
