"""`overnight reproduce`: a deterministic CPU training, retrained from its records, matches exactly."""

from __future__ import annotations

import pytest
from luigi.execution_summary import LuigiStatusCode

from pipeline.errors import DataError
from pipeline.store import database, ledger
from tasks import TrainModel
from tasks.reproduction import reproduce
from tests.tasks.support import build, fresh

pytestmark = pytest.mark.slow


def test_deterministic_training_reproduces_identical_metrics(configure, tabular_csv, tmp_path):
    configure(
        dataset={"path": str(tabular_csv), "label": "label", "slice_column": "island"},
        SplitData={"test_fraction": "0.25"},
        TrainModel={"deterministic": "true", "epochs": "3", "architecture": "mlp"},
    )
    assert build(fresh(TrainModel)).status == LuigiStatusCode.SUCCESS
    engine = database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}")
    run = ledger.latest_run(engine, "TrainModel")

    result = reproduce(engine, run["run_id"][:8], scratch=tmp_path / "scratch")
    assert result.reproduced_version == result.original_version
    assert result.compared >= 6 and result.identical, result.mismatches


def test_changed_raw_data_refuses_to_reproduce(configure, tabular_csv, tmp_path):
    configure(dataset={"path": str(tabular_csv), "label": "label"})
    assert build(fresh(TrainModel)).status == LuigiStatusCode.SUCCESS
    engine = database.connect(f"sqlite:///{tmp_path / 'data' / 'overnight.db'}")
    run = ledger.latest_run(engine, "TrainModel")
    tabular_csv.write_text(tabular_csv.read_text().replace("red", "crimson", 1))
    with pytest.raises(DataError, match="changed since this run"):
        reproduce(engine, run["run_id"], scratch=tmp_path / "scratch")
