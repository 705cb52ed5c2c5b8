"""Unit tests for pipeline/stages/training.py, pipeline/stages/prediction.py and evaluation.evaluate (TensorFlow).

Tiny synthetic problems, a few epochs each: every test runs in seconds on two CPU cores.
"""

import json
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from pipeline.artifacts.evaluation import EvaluationFolder
from pipeline.artifacts.model import ModelFolder
from pipeline.stages import training
from pipeline.stages.evaluation import evaluate
from pipeline.stages.features import SplitArrays, encode_labels, fit, transform
from pipeline.stages.prediction import predict
from pipeline.stages.schema import Schema
from pipeline.stages.training import DEBUG_NEAR_ZERO, HISTORY_FILE, TrainingConfig, read_history, train

CLASSIFICATION = Schema(
    label="y", task="classification", kinds={"x1": "numeric", "x2": "numeric", "colour": "categorical"}
)
REGRESSION = Schema(label="price", task="regression", kinds={"x1": "numeric", "x2": "numeric"})
QUICK = TrainingConfig(epochs=2, batch_size=16, verbose=0, patience=0)


def _classification_table(n: int = 64, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "y": np.where(x1 + x2 > 0, "pos", "neg"),
        }
    )


def _regression_table(n: int = 64, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "price": 1000.0 + 100.0 * x1 - 50.0 * x2})


def _prepare(table: pd.DataFrame, schema: Schema, n_train: int = 48):
    """(preprocessor, train arrays, validation arrays), fitted on the train rows."""
    train_rows, validation_rows = table.iloc[:n_train], table.iloc[n_train:]
    preprocessor = fit(train_rows, schema)
    data = [
        SplitArrays(
            transform(rows, preprocessor),
            encode_labels(rows[schema.label], preprocessor),
            np.array([f"e{i}" for i in range(len(rows))]),
        )
        for rows in (train_rows, validation_rows)
    ]
    return preprocessor, data[0], data[1]


def _train_and_save(train_data, validation_data, preprocessor, config, *, model_dir, work_dir, on_epoch=None):
    """train(), then the model folder written and sealed as TrainModel writes it."""
    result = train(train_data, validation_data, preprocessor, config, work_dir=work_dir, on_epoch=on_epoch)
    folder = ModelFolder(model_dir)
    folder.write(
        result.model,
        preprocessor=preprocessor,
        reference={},
        training={},
        history_csv=result.history_csv,
        tensorboard=result.tensorboard,
    )
    folder.seal()  # a model folder without its seal is read by no one (pipeline/artifacts/model.py)
    return result


def _load_model(model_dir):
    return ModelFolder(model_dir).load_model()


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory):
    """One two-epoch classification training shared by the tests that only read its outputs."""
    root = tmp_path_factory.mktemp("classification")
    preprocessor, train_data, validation_data = _prepare(_classification_table(), CLASSIFICATION)
    epochs_seen = []

    def on_epoch(done, planned):
        epochs_seen.append((done, planned, (root / "work" / "backup").exists()))

    result = _train_and_save(
        train_data,
        validation_data,
        preprocessor,
        QUICK,
        model_dir=root / "model",
        work_dir=root / "work",
        on_epoch=on_epoch,
    )
    return {
        "root": root,
        "result": result,
        "preprocessor": preprocessor,
        "train": train_data,
        "validation": validation_data,
        "epochs_seen": epochs_seen,
    }


def test_train_writes_model_and_history(classification_run):
    root, result = classification_run["root"], classification_run["result"]
    assert (root / "model" / "model.keras").stat().st_size > 0
    assert (root / "model" / HISTORY_FILE).exists()
    assert len(result.history["loss"]) == 2 and len(result.history["val_loss"]) == 2
    assert result.history["epoch"] == [0.0, 1.0]
    assert all(np.isfinite(result.history["loss"]))
    assert result.resumed_from_epoch == 0
    assert result.debug is None
    assert read_history(root / "model" / HISTORY_FILE) == result.history


def test_train_backs_up_each_epoch_in_the_work_dir(classification_run):
    root = classification_run["root"]
    # The backup exists after every epoch (so a killed run can resume) ...
    assert classification_run["epochs_seen"] == [(1, 2, True), (2, 2, True)]
    # ... and is removed once training finished.
    assert not (root / "work" / "backup").exists()
    assert (root / "work" / HISTORY_FILE).exists()


def test_no_callback_works_per_batch(tmp_path):
    # Keras calls every callback after every step; TensorBoard's own hook logs each step's metrics
    # even when it writes once per epoch, which cost 10 to 20% of a small model's steps per second.
    import keras
    from keras.src.utils.python_utils import is_default

    callbacks = training._callbacks(
        replace(QUICK, patience=3), tmp_path, tmp_path / "backup", {}, lambda done, planned: None, keras, 10
    )
    hooks = ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end")
    busy = [
        (type(callback).__name__, hook)
        for callback in callbacks
        for hook in hooks
        if not is_default(getattr(callback, hook))
    ]
    assert busy == []


def test_tensorboard_still_gets_one_summary_per_epoch(classification_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = EventAccumulator(str(classification_run["root"] / "model" / "tensorboard" / "train")).Reload()
    assert [event.step for event in logs.Tensors("epoch_loss")] == [0, 1]


def test_a_killed_training_resumes_from_its_last_finished_epoch(tmp_path):
    preprocessor, train_data, validation_data = _prepare(_classification_table(seed=3), CLASSIFICATION)
    config = TrainingConfig(epochs=3, batch_size=16, verbose=0, patience=0)

    def killed_after_first_epoch(done, planned):
        if done == 1:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        _train_and_save(
            train_data,
            validation_data,
            preprocessor,
            config,
            model_dir=tmp_path / "model",
            work_dir=tmp_path / "work",
            on_epoch=killed_after_first_epoch,
        )
    assert (tmp_path / "work" / "backup").exists()
    assert not (tmp_path / "model" / "model.keras").exists()

    seen = []
    result = _train_and_save(
        train_data,
        validation_data,
        preprocessor,
        config,
        model_dir=tmp_path / "model",
        work_dir=tmp_path / "work",
        on_epoch=lambda done, planned: seen.append(done),
    )
    assert result.resumed_from_epoch == 1
    assert seen == [2, 3]  # epoch 1 was not trained again
    assert result.history["epoch"] == [0.0, 1.0, 2.0]  # the history holds every epoch
    assert (tmp_path / "model" / "model.keras").exists()


TWO_CARDS = """
import json, logging, sys
from pathlib import Path
import tensorflow as tf
logging.basicConfig(level=logging.INFO)
# Two logical CPUs stand in for two GPUs: the same MirroredStrategy code path, on any machine.
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
cpus, listed = tf.config.list_logical_devices("CPU"), tf.config.list_logical_devices
tf.config.list_logical_devices = lambda kind=None: cpus if kind == "GPU" else listed(kind)
from tests.unit.test_training import CLASSIFICATION, QUICK, _classification_table, _prepare, _train_and_save
preprocessor, train_data, validation_data = _prepare(_classification_table(), CLASSIFICATION)
root = Path(sys.argv[1])
result = _train_and_save(
    train_data, validation_data, preprocessor, QUICK, model_dir=root / "model", work_dir=root / "work"
)
print(json.dumps(result.history))
"""


def test_several_cards_train_one_model_with_mirrored_strategy(tmp_path):
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-c", TWO_CARDS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "training on 2 GPUs (MirroredStrategy)" in completed.stderr
    history = json.loads(completed.stdout.splitlines()[-1])
    assert history["epoch"] == [0.0, 1.0] and all(np.isfinite(history["loss"]))
    model = _load_model(tmp_path / "model")
    assert model.count_params() > 0


def test_a_finished_work_dir_is_cleared_not_resumed(tmp_path, classification_run):
    # history.csv without a backup: a run that finished training but was not renamed.
    work = tmp_path / "work"
    work.mkdir()
    (work / HISTORY_FILE).write_text("epoch,loss,val_loss\n0,9.0,9.0\n1,8.0,8.0\n")
    preprocessor = classification_run["preprocessor"]
    result = _train_and_save(
        classification_run["train"],
        classification_run["validation"],
        preprocessor,
        TrainingConfig(epochs=1, batch_size=16, verbose=0, patience=0),
        model_dir=tmp_path / "model",
        work_dir=work,
    )
    assert result.resumed_from_epoch == 0
    assert result.history["epoch"] == [0.0]
    assert result.history["loss"][0] != 9.0


def test_a_torn_checkpoint_is_set_aside_and_training_goes_on(tmp_path, caplog):
    # A checkpoint whose bytes are garbage (a disk that lied, a kill inside the HDF5 library).
    preprocessor, train_data, validation_data = _prepare(_classification_table(seed=6), CLASSIFICATION)
    work = tmp_path / "work"
    torn = work / "backup" / "epoch-000001"
    torn.mkdir(parents=True)
    (torn / "weights.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    (torn / "state.json").write_text('{"epoch": 1, "batch": 0}')
    (work / HISTORY_FILE).write_text("epoch,loss,val_loss\n0,0.9,0.9\n")
    config = TrainingConfig(epochs=2, batch_size=16, verbose=0, patience=0)
    result = train(train_data, validation_data, preprocessor, config, work_dir=work)
    assert result.resumed_from_epoch == 0 and result.history["epoch"] == [0.0, 1.0]
    assert "checkpoint" in caplog.text and "cannot be read" in caplog.text
    assert not (work / "backup").exists()  # set aside, then the finished training removed its backup


def test_each_epoch_state_is_complete_or_absent_and_the_previous_one_kept(tmp_path):
    from pipeline.stages.checkpoints import states

    preprocessor, train_data, validation_data = _prepare(_classification_table(seed=7), CLASSIFICATION)
    seen = []

    def look(done, planned):
        seen.append([state.name for state in states(tmp_path / "work" / "backup")])

    config = TrainingConfig(epochs=3, batch_size=16, verbose=0, patience=0)
    train(train_data, validation_data, preprocessor, config, work_dir=tmp_path / "work", on_epoch=look)
    assert seen == [["epoch-000001"], ["epoch-000002", "epoch-000001"], ["epoch-000003", "epoch-000002"]]


def test_the_epoch_early_stopping_restored_is_recorded_for_the_diagnosis(tmp_path):
    preprocessor, train_data, validation_data = _prepare(_classification_table(seed=8), CLASSIFICATION)
    config = TrainingConfig(epochs=4, batch_size=16, verbose=0, patience=1, learning_rate=0.05)
    result = train(train_data, validation_data, preprocessor, config, work_dir=tmp_path / "stopping")
    assert result.restored_epoch == int(np.argmin(result.history["val_loss"])) + 1
    without = train(train_data, validation_data, preprocessor, QUICK, work_dir=tmp_path / "no-stopping")
    assert without.restored_epoch is None  # patience 0: the last epoch's weights stay


def test_debug_run_drives_the_loss_near_zero(tmp_path):
    preprocessor, train_data, validation_data = _prepare(_classification_table(seed=5), CLASSIFICATION)
    config = TrainingConfig(epochs=2, batch_size=16, verbose=0, debug=True, debug_examples=8)
    result = _train_and_save(
        train_data, validation_data, preprocessor, config, model_dir=tmp_path / "model", work_dir=tmp_path / "work"
    )
    verdict = result.debug
    assert verdict["near_zero"] is True
    assert verdict["last_loss"] < DEBUG_NEAR_ZERO < verdict["first_loss"]
    assert verdict["epochs"] == len(result.history["loss"]) >= 2
    assert result.history["val_loss"][-1] == pytest.approx(result.history["loss"][-1], rel=0.5, abs=0.05)


def test_debug_verdict_raises_when_the_loss_stays_high():
    with pytest.raises(RuntimeError, match="debug run: the training loss went from 1.0000 to 0.9000"):
        training._debug_verdict({"loss": [1.0, 0.9]})
    assert training._debug_verdict({"loss": [1.0, 0.01]})["near_zero"] is True


def test_read_history_keeps_the_last_row_of_a_repeated_epoch(tmp_path):
    path = tmp_path / HISTORY_FILE
    path.write_text(
        "epoch,accuracy,loss,val_loss\n"
        "0,0.5,1.0,1.1\n"
        "1,0.6,0.8,0.9\n"
        "1,0.65,0.7,0.85\n"  # epoch 1 again after a resume: this row wins
        "2,0.7,0.6,0.8\n"
    )
    history = read_history(path)
    assert history == {
        "epoch": [0.0, 1.0, 2.0],
        "accuracy": [0.5, 0.65, 0.7],
        "loss": [1.0, 0.7, 0.6],
        "val_loss": [1.1, 0.85, 0.8],
    }


def test_read_history_drops_a_half_written_last_row(tmp_path):
    path = tmp_path / HISTORY_FILE
    path.write_text("epoch,loss,val_loss\n0,1.0,1.1\n1,0.8,0.9\n2,0.7")  # killed while writing
    assert read_history(path) == {"epoch": [0.0, 1.0], "loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}


def test_read_history_of_an_empty_log(tmp_path):
    path = tmp_path / HISTORY_FILE
    path.write_text("epoch,loss,val_loss\n")
    assert read_history(path) == {}


def test_class_weights_are_inverse_to_frequency():
    weights = training._class_weights(np.array([0, 0, 0, 1, -1]), 3)
    assert weights[0] == pytest.approx(4 / (3 * 3))
    assert weights[1] == pytest.approx(4 / (3 * 1))
    assert weights[2] == pytest.approx(4 / 3)  # absent class: counted as one


def test_unknown_regression_loss_is_refused():
    import keras

    spec = fit(_regression_table(), REGRESSION).model_spec()
    with pytest.raises(ValueError, match="regression_loss must be mse or huber"):
        training._loss(spec, TrainingConfig(regression_loss="mae"), keras)


def test_an_unknown_learning_rate_schedule_is_refused():
    import keras

    with pytest.raises(ValueError, match="learning_rate_schedule must be one of plateau, cosine, constant"):
        training._learning_rate(TrainingConfig(learning_rate_schedule="step"), 100, keras)
    cosine = training._learning_rate(
        TrainingConfig(learning_rate_schedule="cosine", epochs=2, batch_size=10), 95, keras
    )
    assert float(cosine(0)) == pytest.approx(1e-3) and float(cosine(20)) == pytest.approx(0.0, abs=1e-9)


def test_load_model_and_predict_round_trip(classification_run):
    preprocessor = classification_run["preprocessor"]
    model = _load_model(classification_run["root"] / "model")
    validation = classification_run["validation"]
    inputs, labels = validation.features, validation.labels
    probabilities = predict(model, inputs, preprocessor)
    assert probabilities.shape == (len(labels), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert (probabilities >= 0).all()
    # Predicting again gives the same answer: inference has no dropout or randomness.
    np.testing.assert_allclose(predict(model, inputs, preprocessor, batch_size=5), probabilities, rtol=1e-5)


def test_predict_of_no_rows(classification_run):
    preprocessor = classification_run["preprocessor"]
    model = _load_model(classification_run["root"] / "model")
    empty = {name: values[:0] for name, values in classification_run["validation"].features.items()}
    assert predict(model, empty, preprocessor).shape == (0, 2)


def test_evaluate_writes_metrics_plots_and_predictions(tmp_path, classification_run):
    preprocessor = classification_run["preprocessor"]
    validation = classification_run["validation"]
    labels, ids = validation.labels, validation.example_ids
    test_labels = labels.copy()
    test_labels[0] = -1  # a class unseen in training is left out of the test metrics
    splits = {"validation": validation, "test": SplitArrays(validation.features, test_labels, ids)}
    out = tmp_path / "evaluation"
    out.mkdir()
    history = classification_run["result"].history
    evaluation = evaluate(
        _load_model(classification_run["root"] / "model"),
        preprocessor,
        splits,
        history,
        headline="accuracy",
        slices={i: ("odd" if int(i[1:]) % 2 else "even") for i in ids},
    )
    EvaluationFolder(out).write(evaluation)
    document = evaluation.document
    assert document["splits"]["validation"]["rows"] == len(labels)
    assert 0.0 <= document["splits"]["test"]["accuracy"] <= 1.0
    assert document["headline"]["value"] == document["splits"]["test"]["accuracy"]
    assert set(document["slices"]) == {"even", "odd"}
    assert sum(s["rows"] for s in document["slices"].values()) == len(labels) - 1
    assert document["diagnosis"]["diagnosis"] in {"overfitting", "underfitting", "fine"}
    assert json.loads((out / "metrics.json").read_text())["headline"] == document["headline"]
    for name in ("learning_curves.png", "confusion_matrix.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    predictions = pd.read_parquet(out / "test_predictions.parquet")
    assert len(predictions) == len(labels) - 1 and "e0" not in set(predictions["example_id"])
    assert predictions["loss"].is_monotonic_decreasing  # worst first
    assert set(predictions["label"]) <= {"neg", "pos"}


def test_regression_predicts_in_label_units(tmp_path):
    preprocessor, train_data, validation_data = _prepare(_regression_table(), REGRESSION)
    result = _train_and_save(
        train_data, validation_data, preprocessor, QUICK, model_dir=tmp_path / "model", work_dir=tmp_path / "work"
    )
    assert len(result.history["mae"]) == 2
    # The loss is in units of the target's spread (~100 here), the mae in the target's own units.
    assert result.history["loss"][0] < 5 and result.history["mae"][0] > 20
    predictions = predict(_load_model(tmp_path / "model"), validation_data.features, preprocessor)
    assert predictions.shape == (len(validation_data.labels),)
    # Barely trained, yet in label units: around the target mean of ~1000, not around 0.
    assert 500 < predictions.mean() < 1500
    assert abs(predictions.mean() - preprocessor.target_mean) < 3 * preprocessor.target_std

    # Evaluation of a regression model: label-unit metrics, lower-is-better headline, scatter plot.
    out = tmp_path / "evaluation"
    out.mkdir()
    ids = validation_data.example_ids
    splits = {split: validation_data for split in ("validation", "test")}
    evaluation = evaluate(_load_model(tmp_path / "model"), preprocessor, splits, result.history, headline="mae")
    EvaluationFolder(out).write(evaluation)
    document = evaluation.document
    test_metrics = document["splits"]["test"]
    assert test_metrics["mae"] == pytest.approx(np.abs(predictions - validation_data.labels).mean(), rel=1e-4)
    assert document["headline"]["value"] == pytest.approx(-test_metrics["mae"])
    assert (out / "predicted_vs_actual.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(pd.read_parquet(out / "test_predictions.parquet")) == len(ids)


def test_training_with_class_weights_and_label_smoothing(tmp_path):
    table = _classification_table(seed=4)
    table.loc[table.index[:40], "y"] = "neg"  # imbalanced: mostly neg
    preprocessor, train_data, validation_data = _prepare(table, CLASSIFICATION)
    config = TrainingConfig(epochs=1, batch_size=16, verbose=0, patience=0, class_weights=True, label_smoothing=0.1)
    result = _train_and_save(
        train_data, validation_data, preprocessor, config, model_dir=tmp_path / "model", work_dir=tmp_path / "work"
    )
    assert len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])


def test_deterministic_trainings_with_one_seed_give_identical_losses(tmp_path):
    # Last in this file: op determinism is process-wide once switched on.
    preprocessor, train_data, validation_data = _prepare(_classification_table(seed=9), CLASSIFICATION)
    config = TrainingConfig(epochs=2, batch_size=16, verbose=0, patience=0, deterministic=True, seed=7)
    first = _train_and_save(
        train_data,
        validation_data,
        preprocessor,
        config,
        model_dir=tmp_path / "a" / "model",
        work_dir=tmp_path / "a" / "work",
    )
    second = _train_and_save(
        train_data,
        validation_data,
        preprocessor,
        config,
        model_dir=tmp_path / "b" / "model",
        work_dir=tmp_path / "b" / "work",
    )
    assert first.history["loss"] == second.history["loss"]
    assert first.history["val_loss"] == second.history["val_loss"]


def _weights_by_layer(model) -> dict:
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}


def test_initial_weights_from_an_earlier_model_are_taken_layer_by_layer(tmp_path, classification_run):
    source = _load_model(classification_run["root"] / "model")
    three = _classification_table(seed=5).assign(y=lambda t: np.where(t["x1"] > 0.5, "high", t["y"]))
    preprocessor, train_data, validation_data = _prepare(three, CLASSIFICATION)
    assert len(preprocessor.classes) == 3  # another head than the source's two classes
    frozen = TrainingConfig(
        epochs=1,
        batch_size=16,
        verbose=0,
        patience=0,
        learning_rate=0.0,  # no step moves a weight: what the model holds is what it took
        initial_weights=str(classification_run["root"] / "model" / "model.keras"),
    )
    result = train(train_data, validation_data, preprocessor, frozen, work_dir=tmp_path / "work")
    taken, before = _weights_by_layer(result.model), _weights_by_layer(source)
    assert set(taken) == set(before)
    for name, weights in taken.items():
        same = all(np.array_equal(a, b) for a, b in zip(weights, before[name]))
        assert same == (name != "logits"), name


def test_a_weights_file_of_the_same_architecture_loads_whole_and_a_bad_one_names_the_setting(
    tmp_path, classification_run
):
    from pipeline.stages.initial_weights import load_initial_weights

    source = _load_model(classification_run["root"] / "model")
    source.save_weights(tmp_path / "digits.weights.h5")
    frozen = TrainingConfig(
        epochs=1,
        batch_size=16,
        verbose=0,
        patience=0,
        learning_rate=0.0,
        initial_weights=str(tmp_path / "digits.weights.h5"),
    )
    preprocessor, train_data = classification_run["preprocessor"], classification_run["train"]
    result = train(train_data, classification_run["validation"], preprocessor, frozen, work_dir=tmp_path / "work")
    for name, weights in _weights_by_layer(result.model).items():
        assert all(np.array_equal(a, b) for a, b in zip(weights, _weights_by_layer(source)[name])), name
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(ValueError, match=r"\[TrainModel\] initial_weights: .*notes.txt is neither"):
        load_initial_weights(result.model, str(tmp_path / "notes.txt"))
    with pytest.raises(ValueError, match=r"\[TrainModel\] initial_weights: .*gone.keras does not exist"):
        load_initial_weights(result.model, str(tmp_path / "gone.keras"))


def test_augmentation_changes_images_while_training_only():
    import keras

    import models
    from models.spec import ArchitectureSettings, InputSpec, ModelSpec, parse_augmentation

    assert parse_augmentation(" flip, rotation ,flip") == ("flip", "rotation")
    with pytest.raises(ValueError, match=r"\[TrainModel\] augmentation: mirror unknown"):
        parse_augmentation("flip, mirror")
    spec = ModelSpec((InputSpec("image__picture", "image", (16, 16, 1)),), "classification", 2)
    settings = ArchitectureSettings(augmentation=("flip", "rotation", "brightness", "contrast"))
    model = models.build_model("cnn", spec, settings)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"RandomFlip", "RandomRotation", "RandomBrightness", "RandomContrast"} <= kinds
    images = {"image__picture": np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")}
    np.testing.assert_array_equal(model(images, training=False), model(images, training=False))
    augmented = keras.Model(model.inputs, model.get_layer("image__picture_contrast").output)
    assert not np.allclose(augmented(images, training=True), images["image__picture"])


def test_a_keras_applications_weights_file_goes_into_the_mobilenet_backbone(tmp_path, classification_run):
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    import models
    from models.spec import ArchitectureSettings, InputSpec, ModelSpec
    from pipeline.stages.initial_weights import load_initial_weights

    # A stand-in for Keras' published no-top file: the same network, its weights in the .h5 layout.
    published = keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), include_top=False, weights=None, include_preprocessing=False, pooling="avg"
    )
    with h5py.File(tmp_path / "mobilenet_no_top.h5", "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, published)
    spec = ModelSpec((InputSpec("image__photo", "image", (32, 32, 3)),), "classification", 3)
    model = models.build_model("mobilenet_v3_small", spec, ArchitectureSettings())
    transfer = load_initial_weights(model, str(tmp_path / "mobilenet_no_top.h5"))
    assert transfer.taken == ("backbone",) and "logits" in transfer.kept
    for ours, theirs in zip(model.get_layer("backbone").get_weights(), published.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="fits the backbone of architecture mobilenet_v3_small; this model has none"):
        load_initial_weights(_load_model(classification_run["root"] / "model"), str(tmp_path / "mobilenet_no_top.h5"))
    with pytest.raises(ValueError, match="at least 32 x 32 pixels; got 16 x 16"):
        models.build_model(
            "mobilenet_v3_small", ModelSpec((InputSpec("i", "image", (16, 16, 3)),), "classification", 2)
        )


def test_a_weights_file_of_another_model_names_the_file_and_what_it_misses(tmp_path, classification_run):
    import keras

    from pipeline.stages.initial_weights import load_initial_weights

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(ValueError, match=r"other.weights.h5 does not fit this model: a .weights.h5 file must come"):
        load_initial_weights(_load_model(classification_run["root"] / "model"), str(tmp_path / "other.weights.h5"))


def test_a_finished_training_is_kept_until_its_output_is_written(tmp_path, caplog):
    """The model is saved in the work folder before the checkpoints go: a kill while the caller
    writes the model folder costs the rerun no epoch (the work folder goes with the output)."""
    preprocessor, train_data, validation_data = _prepare(_classification_table(seed=8), CLASSIFICATION)
    work = tmp_path / "work"
    config = TrainingConfig(epochs=2, batch_size=16, verbose=0, patience=0)
    first = train(train_data, validation_data, preprocessor, config, work_dir=work)
    assert not (work / "backup").exists() and (work / training.FINISHED_MODEL).is_file()

    with caplog.at_level("INFO", logger="pipeline.stages.training"):
        again = train(train_data, validation_data, preprocessor, config, work_dir=work)

    assert again.resumed_from_epoch == 2 and again.history == first.history  # no epoch trained again
    assert "training had finished (2 epochs) before its output was written" in caplog.text
    for kept, trained in zip(again.model.get_weights(), first.model.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, trained)


def test_a_half_saved_finished_model_is_trained_again(tmp_path):
    """Without its record, a finished.keras may be torn (a kill inside the save): not trusted."""
    preprocessor, train_data, validation_data = _prepare(_classification_table(seed=9), CLASSIFICATION)
    work = tmp_path / "work"
    work.mkdir()
    (work / training.FINISHED_MODEL).write_bytes(b"PK\x03\x04 torn")
    config = TrainingConfig(epochs=1, batch_size=16, verbose=0, patience=0)
    result = train(train_data, validation_data, preprocessor, config, work_dir=work)
    assert result.resumed_from_epoch == 0 and result.history["epoch"] == [0.0]
