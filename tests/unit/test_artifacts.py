"""Unit tests for pipeline/artifacts/ and the Preprocessor's JSON: every stage folder reads back what
was written, and every preprocessor.json written so far still reads."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.artifacts.features import FeatureArrays, load_arrays, save_arrays
from pipeline.artifacts.split import SplitManifest
from pipeline.common.columns import EXAMPLE_ID, SPLIT
from pipeline.stages.features import SplitArrays, encode_labels, fit, split_arrays, transform
from pipeline.stages.preprocessor import ImageShape, Preprocessor, TextEncoding
from pipeline.stages.schema import Schema

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = Schema(label="species", task="classification", kinds={"mass": "numeric", "island": "categorical"})


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            EXAMPLE_ID: ["a", "b", "c", "d"],
            "mass": [1.0, 2.0, np.nan, 4.0],
            "island": ["Biscoe", "Dream", None, "Biscoe"],
            "species": ["Adelie", "Gentoo", "Adelie", "Adelie"],
        }
    )


@pytest.fixture
def preprocessor():
    return fit(_table(), SCHEMA)


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.glob("preprocessor-*.json")))
def test_every_released_preprocessor_json_reads_and_writes_back_the_same(name):
    document = json.loads((FIXTURES / name).read_text())
    preprocessor = Preprocessor.from_json(document)
    assert preprocessor.to_json() == document
    assert preprocessor.schema.as_dict() == document["schema"]
    assert preprocessor.task == document["task"] and preprocessor.label == document["label"]


def test_a_released_preprocessor_keeps_its_meaning():
    classification = Preprocessor.from_json(json.loads((FIXTURES / "preprocessor-0.1-classification.json").read_text()))
    assert classification.classes == ("10", "Adelie", "Gentoo")  # natural order: numbers first
    assert classification.numeric.columns == ("mass",) and classification.numeric.medians == (2.0,)
    assert classification.categorical["island"] == ("Biscoe", "Dream")
    assert isinstance(classification.text["note"], TextEncoding) and classification.text["note"].vocabulary[0] == "big"
    images = Preprocessor.from_json(json.loads((FIXTURES / "preprocessor-0.1-images.json").read_text()))
    # 0.1 dropped transparency: its models are scored that way still (no background).
    assert images.image == {"image": ImageShape(height=8, width=8, channels=1, background=None)}
    assert images.model_spec().inputs[0].shape == (8, 8, 1)
    regression = Preprocessor.from_json(json.loads((FIXTURES / "preprocessor-0.1-regression.json").read_text()))
    assert regression.task == "regression" and regression.target_mean == pytest.approx(30.0)
    assert regression.model_spec().n_outputs == 1


def test_features_folder_round_trip(tmp_path, preprocessor):
    folder = FeatureArrays(tmp_path)
    folder.write_fitted(preprocessor, {"format": 1, "features": {}})
    for split in ("train", "validation", "test"):
        folder.write_arrays(split, split_arrays(_table(), preprocessor))
    assert folder.missing() == []
    assert folder.preprocessor() == preprocessor
    assert folder.reference() == {"format": 1, "features": {}}
    assert folder.arrays("test").example_ids.tolist() == ["a", "b", "c", "d"]


def test_save_and_load_arrays_round_trip(tmp_path, preprocessor):
    arrays = transform(_table(), preprocessor)
    labels = encode_labels(_table()["species"], preprocessor)
    path = tmp_path / "test.npz"
    save_arrays(path, SplitArrays(arrays, labels, np.array(["id-1", "id-2", "id-3", "id-4"], dtype=object)))
    loaded = load_arrays(path)
    assert set(loaded.features) == set(arrays)
    for name in arrays:
        np.testing.assert_array_equal(loaded.features[name], arrays[name])
        assert loaded.features[name].dtype == arrays[name].dtype
    np.testing.assert_array_equal(loaded.labels, labels)
    assert loaded.example_ids.tolist() == ["id-1", "id-2", "id-3", "id-4"]


def test_save_arrays_without_labels(tmp_path, preprocessor):
    path = tmp_path / "batch.npz"
    save_arrays(path, SplitArrays(transform(_table(), preprocessor), None, ["a", "b", "c", "d"]))
    loaded = load_arrays(path)
    assert loaded.labels is None and loaded.example_ids.tolist() == ["a", "b", "c", "d"]


def test_save_arrays_refuses_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="object arrays would be pickled: image__photo"):
        save_arrays(
            tmp_path / "x.npz", SplitArrays({"image__photo": np.array(["a", None], dtype=object)}, None, ["1", "2"])
        )
    assert not (tmp_path / "x.npz").exists()


def test_split_manifest_parts_follow_the_table_and_refuse_another(tmp_path):
    manifest = pd.DataFrame({EXAMPLE_ID: ["a", "b", "c", "d"], SPLIT: ["train", "test", "train", "validation"]})
    folder = SplitManifest(tmp_path)
    folder.write(manifest, {"rows": {}})
    parts = folder.parts(_table())
    assert {name: part[EXAMPLE_ID].tolist() for name, part in parts.items()} == {
        "train": ["a", "c"],
        "validation": ["d"],
        "test": ["b"],
    }
    with pytest.raises(RuntimeError, match="does not follow the rows"):
        folder.parts(_table().iloc[::-1])
