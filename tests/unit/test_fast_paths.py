"""The scoring path's column-at-a-time versions give what the value-at-a-time code gave."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.stages.features import MISSING_ID, OUT_OF_VOCABULARY_ID, RESERVED_IDS, _encode
from pipeline.stages.prediction import probability_texts
from pipeline.stages.schema import parse_numbers, plain_number_block


def test_probability_texts_are_json_dumps_of_each_row_rounded_to_six_digits():
    rng = np.random.default_rng(0)
    outputs = rng.dirichlet([0.05] * 4, size=5_000)
    outputs[:3] = [[1, 0, 0, 0], [1e-5, 1e-4, 1e-7, 1 - 1.11e-4], [0.1, 0.2, 0.3, 0.4]]
    outputs[3] = [np.nan, np.inf, 0.5, 0.5]  # a broken model's output still reads back
    classes = ["a", 'quo"te', "é", "10"]
    expected = [json.dumps(dict(zip(classes, np.round(row, 6).tolist()))) for row in outputs]
    assert probability_texts(outputs, classes).tolist() == expected
    assert json.loads(probability_texts(outputs[1:2], classes)[0]) == {
        "a": 1e-05,
        'quo"te': 0.0001,
        "é": 0.0,
        "10": 0.999889,
    }


def test_categories_are_encoded_as_their_text_with_missing_and_unknown_ids():
    vocabulary = ("a", "1", "2.0", "é", "b")
    values = pd.Series(["a", "b", None, np.nan, "zz", 1, 2.0, "1", pd.NA, "é", " a"], dtype=object, index=range(5, 16))
    first = RESERVED_IDS
    assert _encode(values, vocabulary).tolist() == [
        first, first + 4, MISSING_ID, MISSING_ID, OUT_OF_VOCABULARY_ID, first + 1, first + 2, first + 1,
        MISSING_ID, first + 3, OUT_OF_VOCABULARY_ID,
    ]  # fmt: skip
    assert _encode(pd.Series(["b", None], dtype="string[pyarrow]"), vocabulary).tolist() == [first + 4, MISSING_ID]


def test_plain_numbers_parse_as_the_text_path_does():
    rng = np.random.default_rng(1)
    values = (rng.normal(size=20_000) * 10.0 ** rng.integers(-30, 30, 20_000)).tolist()
    edges = ["-0", "inf", "+3", ".5", "1e400", "1e-400"]
    texts = [repr(v) for v in values] + [f"{v:.3e}" for v in values[:5_000]] + edges
    parsed = parse_numbers(pd.Series(texts))
    assert parsed.tolist()[: len(values)] == values
    assert parsed.tolist()[-6:] == [0.0, float("inf"), 3.0, 0.5, float("inf"), 0.0] and str(parsed.iloc[-6]) == "0.0"
    text_path = parse_numbers(pd.Series([*edges, "seven"]))  # one word: the whole column the text way
    assert text_path.tolist()[:-1] == parsed.tolist()[-6:]
    # One value the fast parser refuses sends the column down the text path: spaces, 1,234, words.
    assert parse_numbers(pd.Series([" 1.5", "1,234", "seven", None])).tolist()[:2] == [1.5, 1234.0]
    assert np.isnan(parse_numbers(pd.Series([" 1.5", "1,234", "seven", None])).iloc[2])


def test_a_block_of_json_numbers_parses_as_each_column_alone_does():
    rng = np.random.default_rng(2)
    numbers = (rng.normal(size=300) * 10.0 ** rng.integers(-30, 30, 300)).tolist()
    columns = {
        "floats": numbers[:100],
        "ints": [int(v) for v in rng.integers(-(2**62), 2**62, 99)] + [2**70],  # beyond int64 too
        "mixed": [None, 0, -0.0, float("inf"), 1e308, 3] + numbers[106:200],
    }
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})
    block = plain_number_block(frame)
    for name in columns:  # NaN where missing, on both sides
        np.testing.assert_array_equal(block[name].to_numpy(), parse_numbers(frame[name]).to_numpy())
    assert np.isnan(block["mixed"].iloc[0]) and str(block["mixed"].iloc[2]) == "0.0"
    # Text or a bool (JSON's true) anywhere: each column alone, by the rules of its values.
    assert plain_number_block(frame.assign(mixed=frame["mixed"].where(frame.index != 5, "3"))) is None
    assert plain_number_block(frame.assign(ints=frame["ints"].where(frame.index != 0, True))) is None


def test_scoring_images_outside_tf_data_gives_the_training_pipeline_s_pixels(tmp_path):
    # Images of two sizes (one resized, one not) and a transparent one, against make_dataset's reading.
    from PIL import Image

    import models
    from pipeline.common.columns import IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN
    from pipeline.stages import features
    from pipeline.stages.prediction import predict
    from pipeline.stages.schema import Schema
    from pipeline.stages.tfdata import image_batches, make_dataset

    rng = np.random.default_rng(3)
    paths = []
    for number in range(7):
        size = (12, 12) if number % 2 else (20, 16)
        mode = "RGBA" if number == 3 else "RGB"
        pixels = rng.integers(0, 256, (size[1], size[0], 4 if mode == "RGBA" else 3), dtype=np.uint8)
        path = tmp_path / f"{number}.png"
        Image.fromarray(pixels, mode).save(path)
        paths.append(str(path))
    table = pd.DataFrame(
        {IMAGE_PATH_COLUMN: paths, IMAGE_ID_COLUMN: [str(n) for n in range(7)], "label": list("ababab") + ["a"]}
    )
    schema = Schema(label="label", task="classification", id_column=IMAGE_ID_COLUMN, kinds={IMAGE_PATH_COLUMN: "image"})
    preprocessor = features.fit(table, schema, image_size=(12, 12))
    inputs = features.transform(table, preprocessor)
    through_tf_data = np.concatenate(
        [batch[next(iter(batch))].numpy() for batch in make_dataset(inputs, None, preprocessor, batch_size=3)]
    )
    direct = np.concatenate([batch[next(iter(batch))] for batch in image_batches(inputs, preprocessor, batch_size=3)])
    np.testing.assert_array_equal(direct, through_tf_data)
    model = models.build_model("cnn", preprocessor.model_spec())
    expected = model.predict(make_dataset(inputs, None, preprocessor, batch_size=3), verbose=0)
    np.testing.assert_allclose(predict(model, inputs, preprocessor, batch_size=3).sum(axis=1), 1.0, rtol=1e-6)
    from scipy.special import softmax

    np.testing.assert_allclose(
        predict(model, inputs, preprocessor, batch_size=3),
        softmax(expected.astype("float64"), axis=1),
        rtol=1e-5,
        atol=1e-7,
    )


def test_a_reproduction_names_each_metric_that_differs_baselines_included():
    from pipeline.common.metrics import Metric
    from tasks.reproduction import Reproduction, _compare

    result = Reproduction("r", "v", "v", Path("/tmp"))
    before = [Metric("accuracy", 0.9, "test"), Metric("accuracy", 0.8, "test", baseline="linear")]
    after = [Metric("accuracy", 0.9, "test"), Metric("accuracy", 0.7, "test", baseline="linear")]
    _compare(before, after, result)
    assert result.compared == 2 and result.mismatches == ["accuracy (test, baseline linear): 0.8 then, 0.7 now"]
