"""Damaged finished outputs are named in one line, moved aside (never deleted) and rebuilt.

Every finished stage folder carries integrity.json (each file's size and SHA-256): a folder whose
sizes no longer match is not complete, and whoever reads a file checks its hash.
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

from pipeline.artifacts.folder import INTEGRITY, read_json
from pipeline.artifacts.model import ModelFolder
from pipeline.store import database, registry
from tasks import BatchPredict, Nightly, RegisterModel
from tests.tasks.conftest import PER_NIGHT
from tests.tasks.support import build, fresh

# One worker takes the tests of the `trained` fixture: its model is trained once per backend, not per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("trained")]
SUCCEEDED = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)


def truncate(path: Path) -> int:
    """Cut a file to half its size, as a kill or a full disk would; its original size."""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    return size


def aside(folder: Path) -> list[Path]:
    return sorted(folder.parent.glob(f"{folder.name}.damaged-*"))


def predictions(url: str, night: datetime.date) -> int:
    import sqlalchemy as sa

    with database.connect(url).connect() as connection:
        query = sa.text("SELECT COUNT(*) FROM predictions WHERE batch_date = :d")
        return connection.execute(query, {"d": night}).scalar()


def scored(url: str, night: datetime.date) -> Path:
    """The night scored as Nightly scores it (by the production model), not yet loaded."""
    model = registry.production(database.connect(url))["version"]
    assert build(fresh(BatchPredict, date=night, model_version=model)).status in SUCCEEDED
    return Path(fresh(BatchPredict, date=night, model_version=model).output().path)


@pytest.mark.parametrize("name", ["predictions.parquet", "valid.parquet"])
def test_a_truncated_night_output_is_moved_aside_and_the_night_scored_again(trained, name, caplog):
    url, examples, _ = trained
    night = datetime.date.fromisoformat(examples.nights[0])
    folder = scored(url, night)  # then killed before its load
    size = truncate(folder / name)

    assert build(fresh(Nightly, date=night)).status in SUCCEEDED
    assert f"{folder / name} has {size // 2} bytes, not {size}" in caplog.text  # named in one line
    [kept] = aside(folder)
    assert (kept / name).stat().st_size == size // 2  # moved aside with its bytes, never deleted
    assert predictions(url, night) == PER_NIGHT  # rebuilt and loaded exactly


@pytest.mark.parametrize("name", ["model.keras", "preprocessor.json"])
def test_a_damaged_production_model_stops_the_night_in_one_line_and_register_rebuilds_it(
    trained, tmp_path, name, caplog
):
    url, examples, _ = trained
    engine = database.connect(url)
    production = registry.production(engine)
    model = Path(production["path"])
    size = truncate(model / name)
    night = datetime.date(2031, 5, 1)
    shutil.copytree(tmp_path / "data" / "incoming" / examples.nights[0], tmp_path / "data" / "incoming" / str(night))

    stopped = build(fresh(Nightly, date=night))
    assert stopped.status == LuigiStatusCode.FAILED
    line = f"{model / name} has {size // 2} bytes, not {size}: model {production['version']}'s folder was moved"
    assert line in caplog.text and "luigi --module tasks RegisterModel" in caplog.text
    assert len(aside(model)) == 1 and not model.exists()

    assert build(fresh(RegisterModel)).status in SUCCEEDED  # the same version, trained again
    assert (model / name).stat().st_size > 0 and read_json(model / INTEGRITY)["files"][name]["bytes"] > 0
    rebuilt = registry.find(engine, production["version"])
    # Same version, same training: on a CPU the bytes may even be the same; the registry holds the new file's.
    assert rebuilt["stage"] == "production" and rebuilt["sha256"] == ModelFolder(model).sha256()

    assert build(fresh(Nightly, date=night)).status in SUCCEEDED
    assert predictions(url, night) == PER_NIGHT


def test_a_file_changed_in_place_is_caught_by_its_hash_when_read(trained, caplog):
    url, examples, _ = trained
    night = datetime.date.fromisoformat(examples.nights[1])
    folder = scored(url, night)
    summary = folder / "batch.json"
    text = summary.read_text()
    summary.write_text(text.replace('"rows_scored": 40', '"rows_scored": 41'))  # same size, other bytes
    assert summary.stat().st_size == len(text.encode())

    assert build(fresh(Nightly, date=night)).status == LuigiStatusCode.FAILED
    assert f"{summary} is damaged: expected" in caplog.text
    assert len(aside(folder)) == 1
    assert build(fresh(Nightly, date=night)).status in SUCCEEDED  # the next run rebuilds it
    assert predictions(url, night) == PER_NIGHT


def test_a_swapped_production_model_with_a_rewritten_seal_is_refused_by_the_registry_s_hash(trained, tmp_path, caplog):
    # Another safe Keras model in the production folder, its integrity.json rewritten to match:
    # the folder's own seal passes, the sha256 recorded at registration does not.
    import keras

    url, examples, _ = trained
    production = registry.production(database.connect(url))
    folder = ModelFolder(Path(production["path"]))
    original = keras.saving.load_model(folder.path / "model.keras", compile=False)
    other = keras.models.clone_model(original)  # same shape, fresh weights
    other.save(folder.path / "model.keras")
    folder.seal()
    assert folder.damage() is None and folder.sha256() != production["sha256"]
    night = datetime.date(2031, 6, 1)
    shutil.copytree(tmp_path / "data" / "incoming" / examples.nights[0], tmp_path / "data" / "incoming" / str(night))

    assert build(fresh(Nightly, date=night)).status == LuigiStatusCode.FAILED
    line = f"model {production['version']}: {folder.path / 'model.keras'} is not the registered file"
    assert line in caplog.text and f"registered {production['sha256'][:12]}" in caplog.text
    assert predictions(url, night) == 0  # nothing scored by the swapped model


def test_a_loaded_night_s_truncated_predictions_are_rebuilt_on_rerun(trained, caplog):
    """A night whose scores were loaded, then damaged: named in one line, rebuilt, loaded once."""
    url, examples, _ = trained
    night = datetime.date.fromisoformat(examples.nights[0])
    succeeded = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
    assert build(fresh(Nightly, date=night)).status in succeeded  # scored and loaded
    model = registry.production(database.connect(url))["version"]
    folder = Path(fresh(BatchPredict, date=night, model_version=model).output().path)
    parquet = folder / "predictions.parquet"
    size = parquet.stat().st_size
    with open(parquet, "r+b") as handle:
        handle.truncate(size // 2)

    assert build(fresh(Nightly, date=night)).status in succeeded
    assert f"{parquet} has {size // 2} bytes, not {size}" in caplog.text  # named in one line
    assert parquet.stat().st_size == size  # rebuilt in place
    assert [p.name for p in folder.parent.glob(f"{folder.name}.damaged-*")]  # the damaged one kept aside
    assert len(pd.read_parquet(parquet)) == PER_NIGHT
    assert predictions(url, night) == PER_NIGHT  # loaded again, not twice
