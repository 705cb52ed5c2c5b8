"""Unit tests for models/: every architecture builds, runs, and keeps the builder contract."""

import importlib.util
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

import models
from models import architecture_names, build_model
from models.branches import bag_of_words, piecewise_linear
from models.spec import ArchitectureSettings, InputSpec, ModelSpec

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
BATCH_SIZE = 4
N_CLASSES = 3

NUMERIC = InputSpec("numeric", "numeric", (5,))
ISLAND = InputSpec("categorical__island", "categorical", (1,), vocabulary_size=6)
SPECIES = InputSpec("categorical__species", "categorical", (1,), vocabulary_size=4)
REVIEW = InputSpec("text__review", "text", (12,), vocabulary_size=50)
# A text input of a preprocessor that records idf: its model also gets a bag of words.
REVIEW_IDF = (0.0, 2.0, *np.linspace(1.0, 3.0, 48).round(3))
REVIEWED = InputSpec("text__review", "text", (12,), vocabulary_size=50, idf=REVIEW_IDF)
DIGIT = InputSpec("image__digit", "image", (8, 8, 1))

# Small layers keep each build and forward pass well under a second.
SMALL_SETTINGS = ArchitectureSettings(width=16, dropout=0.1, embedding_dim=4, text_embedding_dim=8, filters=(8, 16))

# (architecture, inputs) pairs each architecture must take.
MATCHING_SPECS = [
    ("mlp", (NUMERIC, ISLAND)),
    ("mlp", (ISLAND,)),
    ("cnn", (DIGIT,)),
    ("text", (REVIEW,)),
    ("text", (REVIEW, NUMERIC, ISLAND)),
    ("text", (REVIEWED,)),
    ("auto", (NUMERIC, REVIEWED)),
    ("auto", (NUMERIC,)),
    ("auto", (DIGIT,)),
    ("auto", (NUMERIC, ISLAND, SPECIES, REVIEW, DIGIT)),
]
MATCHING_IDS = [name + "-" + "+".join(input_spec.kind for input_spec in inputs) for name, inputs in MATCHING_SPECS]


def classification_spec(*inputs: InputSpec) -> ModelSpec:
    return ModelSpec(inputs=inputs, task="classification", n_outputs=N_CLASSES)


def random_batch(spec: ModelSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A dict of arrays with each input's shape and dtype; ids within the vocabulary."""
    batch = {}
    for input_spec in spec.inputs:
        shape = (BATCH_SIZE, *input_spec.shape)
        if input_spec.kind in ("categorical", "text"):
            vocabulary_size = input_spec.vocabulary_size
            batch[input_spec.name] = rng.integers(0, vocabulary_size, shape, dtype="int32")
        else:
            batch[input_spec.name] = rng.uniform(size=shape).astype("float32")
    return batch


def forward(model: keras.Model, batch: dict[str, np.ndarray]) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(batch, training=False))


def test_architecture_names_lists_the_builtin_architectures():
    assert architecture_names() == ["auto", "cnn", "mlp", "mobilenet_v3_small", "text"]
    assert models.DEFAULT_ARCHITECTURE in architecture_names()


@pytest.mark.parametrize(("name", "inputs"), MATCHING_SPECS, ids=MATCHING_IDS)
def test_classification_forward_pass(name, inputs):
    spec = classification_spec(*inputs)
    model = build_model(name, spec, SMALL_SETTINGS)

    logits = forward(model, random_batch(spec, np.random.default_rng(0)))

    assert logits.shape == (BATCH_SIZE, N_CLASSES)
    assert logits.dtype == np.float32
    assert np.all(np.isfinite(logits))
    assert model.output_names == ["logits"]
    assert not model.compiled


@pytest.mark.parametrize(("name", "inputs"), MATCHING_SPECS, ids=MATCHING_IDS)
def test_inputs_are_named_and_typed_by_the_spec(name, inputs):
    model = build_model(name, classification_spec(*inputs), SMALL_SETTINGS)

    expected = {
        input_spec.name: ("int32" if input_spec.kind in ("categorical", "text") else "float32") for input_spec in inputs
    }
    assert {tensor.name: tensor.dtype for tensor in model.inputs} == expected
    assert {tensor.name: tuple(tensor.shape[1:]) for tensor in model.inputs} == {
        input_spec.name: input_spec.shape for input_spec in inputs
    }


@pytest.mark.parametrize(("name", "inputs"), MATCHING_SPECS, ids=MATCHING_IDS)
def test_regression_output_is_rescaled_to_label_units(name, inputs):
    spec = ModelSpec(inputs=inputs, task="regression", n_outputs=1, target_mean=100.0, target_std=5.0)
    model = build_model(name, spec, SMALL_SETTINGS)
    # Zero output layers predict 0 standardized units: the label mean exactly.
    for layer in model.layers:
        if layer.name in ("standardized_prediction", "deep_standardized_prediction", "wide_linear"):
            layer.set_weights([np.zeros_like(weight) for weight in layer.get_weights()])

    prediction = forward(model, random_batch(spec, np.random.default_rng(0)))

    assert model.output_names == ["prediction"]
    np.testing.assert_array_equal(prediction, np.full((BATCH_SIZE, 1), 100.0, dtype="float32"))


def test_regression_rescaling_uses_the_target_std():
    spec = ModelSpec(inputs=(NUMERIC,), task="regression", n_outputs=1, target_mean=100.0, target_std=5.0)
    model = build_model("mlp", spec, SMALL_SETTINGS)
    dense = model.get_layer("standardized_prediction")
    kernel, _ = dense.get_weights()
    # Standardized output 2 -> 2 * 5 + 100 = 110.
    dense.set_weights([np.zeros_like(kernel), np.full((1,), 2.0, dtype="float32")])

    prediction = forward(model, random_batch(spec, np.random.default_rng(0)))

    np.testing.assert_allclose(prediction, 110.0)


def test_saved_model_round_trips_with_its_rescaling(tmp_path):
    spec = ModelSpec(
        inputs=(NUMERIC, ISLAND, REVIEWED, DIGIT), task="regression", n_outputs=1, target_mean=100.0, target_std=5.0
    )
    model = build_model("auto", spec, SMALL_SETTINGS)
    batch = random_batch(spec, np.random.default_rng(0))
    path = tmp_path / "model.keras"

    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)  # as the registry loads it

    np.testing.assert_allclose(forward(reloaded, batch), forward(model, batch), rtol=1e-6)


def test_auto_on_image_only_is_the_cnn():
    spec = classification_spec(InputSpec("image__digit", "image", (8, 8, 1)))
    settings = ArchitectureSettings()

    auto_model = build_model("auto", spec, settings)
    cnn_model = build_model("cnn", spec, settings)

    assert auto_model.count_params() == cnn_model.count_params()
    assert [layer.name for layer in auto_model.layers] == [layer.name for layer in cnn_model.layers]


def test_image_branch_flattens_and_never_pools_below_two_by_two():
    settings = ArchitectureSettings(width=16, filters=(4, 8, 16))
    model = build_model("cnn", classification_spec(DIGIT), settings)

    layer_names = [layer.name for layer in model.layers]
    # 8x8 -> 4x4 -> 2x2; the third block stays at 2x2.
    assert "image__digit_block1_pool" in layer_names
    assert "image__digit_block2_pool" in layer_names
    assert "image__digit_block3_pool" not in layer_names
    assert model.get_layer("image__digit_flatten").output.shape == (None, 2 * 2 * 16)
    assert not any("global" in type(layer).__name__.lower() for layer in model.layers)


def test_output_is_float32_under_mixed_precision():
    spec = ModelSpec(inputs=(NUMERIC, DIGIT), task="regression", n_outputs=1, target_mean=3.0)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        classifier = build_model("cnn", classification_spec(DIGIT), SMALL_SETTINGS)
        regressor = build_model("auto", spec, SMALL_SETTINGS)
    finally:
        keras.mixed_precision.set_global_policy("float32")

    assert classifier.get_layer("image__digit_block1_conv1").compute_dtype == "float16"
    assert classifier.outputs[0].dtype == "float32"
    assert regressor.outputs[0].dtype == "float32"


def test_mlp_rejects_text_inputs_naming_the_kind():
    with pytest.raises(ValueError, match="text"):
        build_model("mlp", classification_spec(NUMERIC, REVIEW))


@pytest.mark.parametrize(
    ("name", "inputs", "message"),
    [
        ("mlp", (DIGIT, REVIEW), "got image, text inputs"),
        ("cnn", (NUMERIC,), r"got numeric \(numeric\)"),
        ("cnn", (DIGIT, InputSpec("image__other", "image", (8, 8, 1))), "image__other"),
        ("text", (NUMERIC, ISLAND), "exactly one text input"),
        ("text", (REVIEW, DIGIT), r"image__digit \(image\)"),
        ("auto", (), "no inputs"),
    ],
)
def test_architecture_rejects_a_spec_it_cannot_take(name, inputs, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, classification_spec(*inputs), SMALL_SETTINGS)


def test_unknown_task_is_rejected_with_the_valid_tasks():
    spec = ModelSpec(inputs=(NUMERIC,), task="ranking", n_outputs=1)
    with pytest.raises(ValueError, match="classification, regression"):
        build_model("mlp", spec, SMALL_SETTINGS)


def test_unknown_architecture_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        build_model("resnet", classification_spec(NUMERIC))

    assert str(error.value) == "unknown architecture 'resnet'; choose one of: auto, cnn, mlp, mobilenet_v3_small, text"


def test_a_new_file_in_the_package_is_discovered():
    package_directory = Path(models.__file__).parent
    architecture_file = package_directory / "zz_test_arch.py"
    helper_file = package_directory / "zz_test_helper.py"
    architecture_file.write_text(
        '"""Throwaway architecture written by tests/unit/test_models.py."""\n'
        "from models import mlp\n\n\n"
        "def build(spec, settings):\n"
        "    return mlp.build(spec, settings)\n",
        encoding="utf-8",
    )
    helper_file.write_text('"""Throwaway helper: no build, so no architecture."""\n', encoding="utf-8")
    try:
        assert "zz_test_arch" in architecture_names()
        assert "zz_test_helper" not in architecture_names()
        model = build_model("zz_test_arch", classification_spec(NUMERIC), SMALL_SETTINGS)
        assert model.output_names == ["logits"]
    finally:
        for path in (architecture_file, helper_file):
            path.unlink(missing_ok=True)
            Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
        sys.modules.pop("models.zz_test_arch", None)
    assert "zz_test_arch" not in architecture_names()


def test_importing_the_package_imports_no_keras_tensorflow_or_luigi():
    code = (
        "import sys, models, models.spec\n"
        "models.architecture_names()\n"
        "heavy = [name for name in ('tensorflow', 'keras', 'luigi') if name in sys.modules]\n"
        "sys.exit(f'imported {heavy}' if heavy else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr


def test_mlp_learns_a_linearly_separable_problem():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(256, 2)).astype("float32")
    labels = (features[:, 0] + features[:, 1] > 0).astype("int32")
    spec = ModelSpec(inputs=(InputSpec("numeric", "numeric", (2,)),), task="classification", n_outputs=2)
    keras.utils.set_random_seed(0)
    model = build_model("mlp", spec, ArchitectureSettings(width=16, dropout=0.0))
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    model.fit({"numeric": features}, labels, epochs=30, batch_size=32, verbose=0)

    predicted = forward(model, {"numeric": features}).argmax(axis=1)
    assert np.mean(predicted == labels) >= 0.95


def test_the_bag_of_words_is_tf_idf_of_the_ids_at_unit_length():
    ids = np.array([[5, 5, 7, 1, 0, 0], [0, 0, 0, 0, 0, 0]], dtype="int32")  # 0 pads, 1 is unknown
    spec = InputSpec("text__review", "text", (6,), vocabulary_size=50, idf=REVIEW_IDF)
    inputs = keras.Input((6,), dtype="int32")
    bag = keras.ops.convert_to_numpy(keras.Model(inputs, bag_of_words(inputs, spec))(ids))

    expected = np.zeros(50)
    expected[[5, 7, 1]] = [2 * REVIEW_IDF[5], REVIEW_IDF[7], REVIEW_IDF[1]]
    np.testing.assert_allclose(bag[0], expected / np.linalg.norm(expected), rtol=1e-5)
    np.testing.assert_allclose(bag[1], 0.0)  # an empty text: no words, no division by zero


@pytest.mark.parametrize("name", ["auto", "text"])
def test_text_with_idf_adds_a_penalised_linear_model_of_its_bag_of_words(name):
    with_bag = build_model(name, classification_spec(REVIEWED, NUMERIC), SMALL_SETTINGS)
    without = build_model(name, classification_spec(REVIEW, NUMERIC), SMALL_SETTINGS)

    linear = with_bag.get_layer("wide_linear")
    assert linear.kernel.shape == (50, N_CLASSES) and linear.kernel_regularizer is not None
    assert with_bag.get_layer("logits").__class__.__name__ == "Add"  # deep logits + linear logits
    assert "wide_linear" not in {layer.name for layer in without.layers}
    assert without.get_layer("logits").__class__.__name__ == "Dense"


def test_piecewise_linear_numbers_place_each_value_among_its_quantiles():
    # Two columns (then their two missing flags): edges -1, 0, 1 and 0, 2.
    spec = InputSpec("numeric", "numeric", (4,), edges=((-1.0, 0.0, 1.0), (0.0, 2.0)))
    inputs = keras.Input((4,))
    encode = keras.Model(inputs, piecewise_linear(inputs, spec))
    values = np.array([[-2.0, 1.0, 0.0, 1.0], [0.5, 3.0, 1.0, 0.0]], dtype="float32")

    encoded = keras.ops.convert_to_numpy(encode(values))

    # bins of column 0: [-1, 0], [0, 1]; of column 1: [0, 2]; then the flags as they were
    np.testing.assert_allclose(encoded, [[0.0, 0.0, 0.5, 0.0, 1.0], [1.0, 0.5, 1.0, 1.0, 0.0]])


def test_piecewise_linear_is_a_setting_and_saves_with_its_fixed_weights(tmp_path):
    numbers = InputSpec("numeric", "numeric", (4,), edges=((-1.0, 0.0, 1.0), (0.0, 2.0)))
    settings = replace(SMALL_SETTINGS, numeric_encoding="piecewise_linear")
    model = build_model("auto", classification_spec(numbers, ISLAND), settings)
    plain = build_model("auto", classification_spec(numbers, ISLAND), SMALL_SETTINGS)
    assert not model.get_layer("numeric_bins").trainable
    assert "numeric_bins" not in {layer.name for layer in plain.layers}

    batch = random_batch(model_spec := classification_spec(numbers, ISLAND), np.random.default_rng(0))
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(forward(reloaded, batch), forward(model, batch), rtol=1e-6)
    assert model_spec.inputs[0].edges == numbers.edges


def test_a_text_left_to_its_bag_of_words_is_the_linear_model_alone():
    settings = replace(SMALL_SETTINGS, text_sequence=False)
    alone = build_model("auto", classification_spec(REVIEWED), settings)
    assert alone.get_layer("logits").kernel_regularizer is not None  # the penalised linear model is the output
    assert not {"deep_logits", "text__review_embedding", "joined_dense"} & {layer.name for layer in alone.layers}
    mixed = build_model("auto", classification_spec(REVIEWED, NUMERIC), settings)
    assert "numeric_dense" in {layer.name for layer in mixed.layers}
    assert "text__review_embedding" not in {layer.name for layer in mixed.layers}
