"""Content-addressed outputs: what changes a version, and what does not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.errors import DataError
from tasks import EvaluateModel, FitPreprocessor, IngestData, SplitData, TrainModel, ValidateData
from tasks.base import versions as code_versions
from tasks.config import dataset_config
from tests.tasks.support import fresh

REPO_ROOT = Path(__file__).resolve().parents[2]


def versions() -> dict[str, str]:
    return {
        task.task_family: fresh(task).version
        for task in (IngestData, ValidateData, SplitData, FitPreprocessor, TrainModel, EvaluateModel)
    }


def test_versions_are_stable_for_unchanged_inputs(configure, tabular_csv):
    configure(dataset={"path": str(tabular_csv)})
    assert versions() == versions()
    output = Path(fresh(TrainModel).output().path)
    assert output.parent.name == "05_training" and output.name == fresh(TrainModel).version


def test_a_training_parameter_changes_training_and_later_only(configure, tabular_csv):
    configure(dataset={"path": str(tabular_csv)})
    before = versions()
    configure(dataset={"path": str(tabular_csv)}, TrainModel={"learning_rate": "0.003"})
    after = versions()
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"TrainModel", "EvaluateModel"}


def test_image_limits_change_the_stages_that_apply_them_and_a_bad_one_is_named(configure, tabular_csv):
    configure(dataset={"path": str(tabular_csv)})
    before = versions()
    assert FitPreprocessor().max_image_bytes == 256 * 2**20 and FitPreprocessor().max_image_side == 512
    configure(dataset={"path": str(tabular_csv)}, FitPreprocessor={"max_image_bytes": "1024"})
    after = versions()  # validation rejects by it: its output and everything after it
    assert {name for name in before if before[name] != after[name]} == set(before) - {"IngestData"}
    configure(dataset={"path": str(tabular_csv)}, FitPreprocessor={"max_image_side": "64"})
    after = versions()  # the size chosen from the data: the fitted preprocessor and after it
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"FitPreprocessor", "TrainModel", "EvaluateModel"}
    configure(dataset={"path": str(tabular_csv)}, FitPreprocessor={"max_image_bytes": "0"})
    with pytest.raises(DataError, match=r"\[FitPreprocessor\] max_image_bytes: 0 is no limit; use a positive"):
        fresh(ValidateData).identity()


def test_an_image_root_changes_every_version_and_none_changes_nothing(configure, tabular_csv, tmp_path):
    configure(dataset={"path": str(tabular_csv)})
    before = versions()
    assert "image_root" not in dataset_config().as_dict()  # unset: the versions data sets always had
    configure(dataset={"path": str(tabular_csv), "image_root": str(tmp_path)})
    after = versions()  # another set of images may be rejected: the snapshot's identity and all after it
    assert all(before[name] != after[name] for name in before)
    assert fresh(ValidateData).identity()["image_root"] == str(tmp_path)


def test_infrastructure_parameters_do_not_change_the_version(configure, tabular_csv):
    configure(dataset={"path": str(tabular_csv)})
    assert fresh(TrainModel).version == fresh(TrainModel, xla=True, mixed_precision=True).version


def test_a_data_file_changes_every_version(configure, tabular_csv):
    configure(dataset={"path": str(tabular_csv)})
    before = versions()
    tabular_csv.write_text(tabular_csv.read_text() + "9.5,50,red,north,big\n")
    after = versions()
    assert all(before[name] != after[name] for name in before)
    assert fresh(IngestData).data_version == fresh(TrainModel).data_version == after["IngestData"]


def test_stage_code_changes_that_stage_and_later(configure, tabular_csv, tmp_path, monkeypatch):
    configure(dataset={"path": str(tabular_csv)})
    repository = tmp_path / "repository"  # the code is read from a copy, so the copy may be edited
    for folder in ("pipeline", "models", "tasks"):
        shutil.copytree(REPO_ROOT / folder, repository / folder, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code_versions, "REPO_ROOT", repository)
    code_versions.forget()
    before = versions()
    split_code = repository / "pipeline" / "stages" / "split.py"
    split_code.write_text(split_code.read_text() + "\nRULE = 2\n")
    code_versions.forget()
    after = versions()
    code_versions.forget()
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"SplitData", "FitPreprocessor", "TrainModel", "EvaluateModel"}
