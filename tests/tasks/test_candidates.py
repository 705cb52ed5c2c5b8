"""auto chooses by evidence: from 1,000 training rows it trains the candidates that apply to the
data, keeps the best on validation, and training.json says what was tried and why the winner won."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from tasks import TrainModel
from tests.tasks.support import build, fresh

pytestmark = pytest.mark.slow


def _steps_csv(path: Path, rows: int = 1_500) -> Path:
    """A class that depends on where a skewed number falls, not on a slope: what bins learn."""
    rng = np.random.default_rng(30)
    size = rng.lognormal(3.0, 1.5, rows)
    band = np.digitize(size, [5.0, 20.0, 80.0])
    table = pd.DataFrame({"size": size.round(3), "noise": rng.normal(size=rows).round(3)})
    path.parent.mkdir(parents=True, exist_ok=True)
    table.assign(y=np.where(band % 2 == 0, "even", "odd")).to_csv(path, index=False)
    return path


def test_auto_trains_its_candidates_and_keeps_the_best_on_validation(configure, tmp_path):
    path = _steps_csv(tmp_path / "raw" / "steps.csv")
    configure(dataset={"path": str(path), "label": "y", "task": "classification"}, TrainModel={"epochs": "2"})
    build(TrainModel())
    folder = Path(fresh(TrainModel).output().path)
    record = json.loads((folder / "training.json").read_text())

    tried = {entry["name"]: entry for entry in record["candidates"]}
    assert list(tried) == ["defaults", "piecewise-linear numbers"]
    assert all(0.0 <= entry["validation_headline"] <= 1.0 and entry["seconds"] > 0 for entry in tried.values())
    best = max(tried.values(), key=lambda entry: entry["validation_headline"])
    assert record["chosen"] == best["name"]
    assert record["why"].startswith(f"highest validation accuracy: {best['validation_headline']:.4f} against ")
    assert record["validation"]["accuracy"] == pytest.approx(best["validation_headline"], abs=1e-9)
    model = keras.saving.load_model(folder / "model.keras", safe_mode=True, compile=False)
    binned = "numeric_bins" in {layer.name for layer in model.layers}
    assert binned == (record["chosen"] == "piecewise-linear numbers")  # the model saved is the winner


def test_search_seconds_0_trains_the_defaults_only(configure, tmp_path):
    path = _steps_csv(tmp_path / "raw" / "steps.csv")
    configure(dataset={"path": str(path), "label": "y", "task": "classification"}, TrainModel={"search_seconds": "0"})
    build(TrainModel())
    record = json.loads((Path(fresh(TrainModel).output().path) / "training.json").read_text())
    assert [entry["name"] for entry in record["candidates"]] == ["defaults"]
    assert record["why"] == "the only candidate trained"
