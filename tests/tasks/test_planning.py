"""`overnight plan`: the tasks that would run and why, with nothing run."""

from __future__ import annotations

from luigi.execution_summary import LuigiStatusCode

from tasks import TrainModel
from tasks.planning import plan
from tests.tasks.support import build, fresh


def reasons(task) -> dict[str, str]:
    return {planned.task.split("(")[0]: planned.reason for planned in plan(task)}


def test_plan_names_first_runs_changed_parameters_new_data_and_upstream_reruns(configure, tabular_csv):
    configure(dataset={"path": str(tabular_csv), "label": "label"})
    first = reasons(fresh(TrainModel))
    assert set(first) == {"IngestData", "ValidateData", "SplitData", "FitPreprocessor", "TrainModel"}
    assert set(first.values()) == {"no output yet"}
    assert build(fresh(TrainModel)).status == LuigiStatusCode.SUCCESS

    assert plan(fresh(TrainModel)) == []
    changed = reasons(fresh(TrainModel, epochs=3))
    assert changed == {"TrainModel": "changed parameter: epochs 1 -> 3"}

    tabular_csv.write_text(tabular_csv.read_text().replace("red", "crimson", 2))
    after_edit = reasons(fresh(TrainModel))
    assert after_edit["IngestData"] == "new data version (the raw files changed)"
    assert after_edit["ValidateData"] == "upstream rerun: IngestData"
    assert after_edit["TrainModel"] == "upstream rerun: FitPreprocessor"
    assert list(after_edit) == ["IngestData", "ValidateData", "SplitData", "FitPreprocessor", "TrainModel"]


def test_plan_runs_nothing(configure, tabular_csv, tmp_path):
    configure(dataset={"path": str(tabular_csv), "label": "label"})
    plan(fresh(TrainModel))
    assert not (tmp_path / "data" / "01_raw").exists()
