"""pipeline/artifacts/inventory.py and collection.py on a data root written by hand."""

import json
import os

from pipeline.artifacts.collection import Roots, verdicts
from pipeline.artifacts.inventory import outputs, scratch
from pipeline.layout import Layout


def _output(root, relative: str, task: str, version: str, upstream=None, size=10):
    folder = root / relative
    folder.mkdir(parents=True)
    (folder / "version.json").write_text(json.dumps({"task": task, "version": version, "upstream": upstream or {}}))
    (folder / "data.bin").write_bytes(b"x" * size)
    return folder


def test_a_kept_model_keeps_its_whole_chain_and_unknown_lineage_is_kept(tmp_path):
    raw = _output(tmp_path, "01_raw/r1", "IngestData", "r1")
    old_raw = _output(tmp_path, "01_raw/r0", "IngestData", "r0")
    features = _output(tmp_path, "04_features/f1", "FitPreprocessor", "f1", {"IngestData": "r1"})
    model = _output(tmp_path, "05_training/m1", "TrainModel", "m1", {"FitPreprocessor": "f1"}, size=1000)
    other = _output(tmp_path, "05_training/m0", "TrainModel", "m0", {"FitPreprocessor": "f1"})
    evaluation = _output(tmp_path, "06_evaluation/e1", "EvaluateModel", "e1", {"TrainModel": "m1"})
    registration = _output(tmp_path, "07_registry/g1", "RegisterModel", "g1", {"EvaluateModel": "e1"})
    unknown = tmp_path / "05_training" / "legacy"
    unknown.mkdir()
    (unknown / "version.json").write_text("{not json")
    (tmp_path / "05_training" / "m2-luigi-tmp-000000123").mkdir()
    (tmp_path / "05_training" / ".work" / "m3").mkdir(parents=True)
    found = outputs(Layout(tmp_path))
    assert {output.path for output in found} == {
        raw,
        old_raw,
        features,
        model,
        other,
        evaluation,
        registration,
        unknown,
    }
    assert next(output for output in found if output.path == model).bytes == 1000 + len(
        (model / "version.json").read_bytes()
    )
    roots = Roots(models={"m1": "production model m1"}, evaluations={}, recent={}, keep_nights=0)
    kept = {verdict.output.path: verdict.kept_by for verdict in verdicts(found, roots)}
    assert kept[raw] == kept[features] == kept[model] == "production model m1"
    assert kept[registration] == "" and kept[evaluation] == ""  # not the model's registered evaluation
    assert kept[unknown].startswith("no readable version.json")
    assert kept[old_raw] == kept[other] == ""
    with_evaluation = Roots(models={}, evaluations={evaluation: "candidate"}, recent={}, keep_nights=0)
    kept = {verdict.output.path: verdict.kept_by for verdict in verdicts(found, with_evaluation)}
    assert kept[evaluation] == kept[model] == kept[raw] == "candidate"
    assert kept[registration] == "the registration of a kept model"
    left = {item.path.name: item.location for item in scratch(Layout(tmp_path))}
    assert left == {
        "m2-luigi-tmp-000000123": str(tmp_path / "05_training" / "m2"),
        "m3": str(tmp_path / "05_training" / "m3"),
    }
    assert os.path.isdir(tmp_path / "05_training" / ".work" / "m3")


def test_the_last_nights_are_kept_with_what_they_were_made_of(tmp_path):
    nights = [_output(tmp_path, f"08_prediction/2026-11-0{day}/p{day}", "BatchPredict", f"p{day}") for day in (1, 2, 3)]
    drift = _output(tmp_path, "09_monitoring/2026-11-03/drift-d3", "MonitorDrift", "d3", {"BatchPredict": "p3"})
    found = outputs(Layout(tmp_path))
    kept = {v.output.path: v.kept_by for v in verdicts(found, Roots({}, {}, {}, keep_nights=2))}
    assert kept[nights[0]] == "" and kept[nights[1]] == kept[nights[2]] == kept[drift] == "one of the last 2 nights"
    assert next(output for output in found if output.path == drift).night.isoformat() == "2026-11-03"


def test_a_run_in_progress_keeps_its_stage_and_every_stage_before_it(tmp_path):
    raw = _output(tmp_path, "01_raw/r0", "IngestData", "r0")
    features = _output(tmp_path, "04_features/f0", "FitPreprocessor", "f0", {"IngestData": "r0"})
    model = _output(tmp_path, "05_training/m0", "TrainModel", "m0", {"FitPreprocessor": "f0"})
    evaluation = _output(tmp_path, "06_evaluation/e0", "EvaluateModel", "e0", {"TrainModel": "m0"})
    found = outputs(Layout(tmp_path))
    training = Roots({}, {}, {}, keep_nights=0, running={"TrainModel": "a TrainModel run is in progress"})
    kept = {v.output.path: v.kept_by for v in verdicts(found, training)}
    assert kept[raw] == kept[features] == kept[model] == "a TrainModel run is in progress" and kept[evaluation] == ""
    unknown = Roots({}, {}, {}, keep_nights=0, running={"SomeNewTask": "in progress"})
    assert all(v.kept_by == "in progress" for v in verdicts(found, unknown))
