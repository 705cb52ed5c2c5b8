"""Unit tests for pipeline/stages/features.py: fitted on train only, applied unchanged anywhere."""

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.stages.features import encode_labels, fit, tokenize, transform
from pipeline.stages.preprocessor import MISSING_ID, OUT_OF_VOCABULARY_ID, ImageShape, Preprocessor, input_name
from pipeline.stages.schema import Schema

SCHEMA = Schema(
    label="species",
    task="classification",
    kinds={"mass": "numeric", "depth": "numeric", "island": "categorical", "note": "text"},
)


def _train() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mass": [1.0, 2.0, 3.0, np.nan, 10.0],
            "depth": [5.0, 5.0, 5.0, 5.0, 5.0],  # constant: std 0 must not divide by zero
            "island": ["Biscoe", "Dream", "Biscoe", None, "Biscoe"],
            "note": ["a big bird", "a small bird", "big", None, "the big big bird"],
            "species": ["10", "2", "Adelie", "2", "10"],
        }
    )


def _test() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "mass": [1000.0, np.nan],
            "depth": [7.0, 5.0],
            "island": ["Atlantis", None],
            "note": ["unseen words big", ""],
            "species": ["2", "Gentoo"],
        }
    )


@pytest.fixture
def preprocessor():
    return fit(_train(), SCHEMA)


def test_fit_uses_train_statistics_only(preprocessor):
    numeric = preprocessor.numeric
    assert numeric.columns == ("mass", "depth")
    assert numeric.medians == (2.5, 5.0)  # median of 1, 2, 3, 10
    # mean and std after imputing the median: 1, 2, 3, 2.5, 10
    assert numeric.means[0] == pytest.approx(np.mean([1, 2, 3, 2.5, 10]))
    assert numeric.stds[0] == pytest.approx(np.std([1, 2, 3, 2.5, 10]))
    assert numeric.stds[1] == 1.0
    # Fitting on train plus test would move the statistics: the test rows were not used.
    both = fit(pd.concat([_train(), _test()], ignore_index=True), SCHEMA)
    assert both.numeric.medians != numeric.medians
    assert "Atlantis" not in preprocessor.categorical["island"]


def test_preprocessor_is_plain_json(preprocessor):
    document = preprocessor.to_json()
    assert json.loads(json.dumps(document)) == document
    assert Preprocessor.from_json(json.loads(json.dumps(document))) == preprocessor


def test_transform_imputes_train_median_and_sets_the_missing_flag(preprocessor):
    numeric = transform(_test(), preprocessor)["numeric"]
    assert numeric.shape == (2, 4)  # (rows, 2 * numeric columns)
    assert numeric.dtype == np.float32
    mean, std = preprocessor.numeric.means[0], preprocessor.numeric.stds[0]
    assert numeric[1, 0] == pytest.approx((2.5 - mean) / std)  # imputed with the train median
    assert numeric[0, 0] == pytest.approx((1000.0 - mean) / std)
    assert numeric[:, 2].tolist() == [0.0, 1.0]  # missing flag of mass
    assert numeric[:, 3].tolist() == [0.0, 0.0]  # depth never missing
    assert numeric[:, 1].tolist() == [2.0, 0.0]  # (7 - 5) / 1 and (5 - 5) / 1


def test_transformed_train_numeric_is_standardised(preprocessor):
    numeric = transform(_train(), preprocessor)["numeric"]
    assert numeric[:, 0].mean() == pytest.approx(0.0, abs=1e-6)
    assert numeric[:, 0].std() == pytest.approx(1.0, abs=1e-6)


def test_categorical_out_of_vocabulary_is_1_and_missing_is_0(preprocessor):
    vocabulary = preprocessor.categorical["island"]
    # Missing is not a token; Dream, in one training row, is below MIN_CATEGORY_COUNT: no id of its own.
    assert vocabulary == ("Biscoe",)
    encoded = transform(_test(), preprocessor)["categorical__island"]
    assert encoded.shape == (2, 1) and encoded.dtype == np.int32
    assert encoded[:, 0].tolist() == [OUT_OF_VOCABULARY_ID, MISSING_ID]
    train_encoded = transform(_train(), preprocessor)["categorical__island"][:, 0]
    assert train_encoded.tolist() == [2, OUT_OF_VOCABULARY_ID, 2, MISSING_ID, 2]


def test_categorical_vocabulary_is_capped():
    schema = Schema(label="y", task="classification", kinds={"c": "categorical"})
    train = pd.DataFrame({"c": ["a", "a", "a", "b", "b", "c"], "y": ["0"] * 6})
    fitted = fit(train, schema, max_vocabulary=2)
    assert fitted.categorical["c"] == ("a", "b")
    assert transform(train, fitted)["categorical__c"][:, 0].tolist() == [2, 2, 2, 3, 3, 1]


def test_tokenize_lowercases_words_and_ignores_missing():
    assert tokenize("The big, BIG bird!") == ["the", "big", "big", "bird"]
    assert tokenize(None) == [] and tokenize(float("nan")) == []


def test_text_is_tokenised_padded_with_0_and_unknown_words_are_1(preprocessor):
    fitted = preprocessor.text["note"]
    assert fitted.vocabulary[0] == "big"  # 4 occurrences
    index = {token: i + 2 for i, token in enumerate(fitted.vocabulary)}
    encoded = transform(_test(), preprocessor)["text__note"]
    assert encoded.dtype == np.int32 and encoded.shape == (2, fitted.width)
    words = encoded[:, : fitted.length]  # the known word pairs follow (test_text_encoding.py)
    assert words[0].tolist() == [OUT_OF_VOCABULARY_ID, OUT_OF_VOCABULARY_ID, index["big"]]
    assert encoded[1].tolist() == [0] * fitted.width  # an empty text: padding only


def test_a_preprocessor_without_word_pairs_encodes_words_only():
    """preprocessor.json files fitted before pairs and idf were recorded score as they were trained."""
    old = Preprocessor.from_json(
        {
            "schema": {"label": "y", "task": "classification", "kinds": {"t": "text"}},
            "text": {"t": {"vocabulary": ["big", "bird"], "length": 3}},
            "classes": ["a", "b"],
        }
    )
    assert old.text["t"].bigrams == () and old.text["t"].idf == ()
    assert transform(pd.DataFrame({"t": ["big bird big bird"]}), old)["text__t"].tolist() == [[2, 3, 2]]
    (text_input,) = old.model_spec().inputs
    assert text_input.shape == (3,) and text_input.vocabulary_size == 4 and text_input.idf == ()


def test_text_length_is_the_95th_percentile_capped():
    schema = Schema(label="y", task="classification", kinds={"t": "text"})
    texts = ["w " * 5] * 19 + ["w " * 100]  # one long outlier
    train = pd.DataFrame({"t": texts, "y": ["0"] * 20})
    assert fit(train, schema).text["t"].length == int(np.percentile([5] * 19 + [100], 95))
    assert fit(train, schema, max_text_length=3).text["t"].length == 3
    cut = fit(train, schema, max_text_length=3)
    encoded = transform(train, cut)["text__t"]
    assert encoded.shape == (20, 3 + 2)  # long texts are cut: 3 words, then their 2 pairs ("w w")
    assert encoded[-1, :3].tolist() == [2, 2, 2]
    empty = pd.DataFrame({"t": [None, ""], "y": ["0", "0"]})
    assert fit(empty, schema).text["t"].length == 1  # never zero


def test_classes_are_sorted_naturally(preprocessor):
    assert preprocessor.classes == ("2", "10", "Adelie")


def test_encode_labels_gives_minus_one_for_an_unseen_class(preprocessor):
    encoded = encode_labels(_test()["species"], preprocessor)
    assert encoded.dtype == np.int32
    assert encoded.tolist() == [0, -1]
    assert encode_labels(_train()["species"], preprocessor).tolist() == [1, 0, 2, 0, 1]


def test_regression_target_statistics_and_labels():
    schema = Schema(label="price", task="regression", kinds={"mass": "numeric"})
    train = pd.DataFrame({"mass": [1.0, 2.0, 3.0], "price": [10.0, 20.0, 60.0]})
    fitted = fit(train, schema)
    assert "classes" not in fitted.to_json()
    assert fitted.target_mean == pytest.approx(30.0)
    assert fitted.target_std == pytest.approx(np.std([10, 20, 60]))
    labels = encode_labels(train["price"], fitted)
    assert labels.dtype == np.float32 and labels.tolist() == [10.0, 20.0, 60.0]
    constant = fit(pd.DataFrame({"mass": [1.0, 2.0], "price": [5.0, 5.0]}), schema)
    assert constant.target_std == 1.0
    spec = fitted.model_spec()
    assert (spec.task, spec.n_outputs) == ("regression", 1)
    assert spec.target_mean == pytest.approx(30.0) and spec.target_std == pytest.approx(fitted.target_std)


def test_model_spec_shapes_and_vocabulary_sizes(preprocessor):
    spec = preprocessor.model_spec()
    assert (spec.task, spec.n_outputs) == ("classification", 3)
    by_name = {input_spec.name: input_spec for input_spec in spec.inputs}
    assert list(by_name) == ["numeric", "categorical__island", "text__note"]
    assert by_name["numeric"].shape == (4,)
    assert by_name["categorical__island"].shape == (1,)
    assert by_name["categorical__island"].vocabulary_size == 1 + 2  # Biscoe, missing, OOV (Dream is rare)
    text = preprocessor.text["note"]
    assert by_name["text__note"].shape == (text.length + text.length - 1,)
    assert by_name["text__note"].vocabulary_size == len(text.vocabulary) + len(text.bigrams) + 2
    assert by_name["text__note"].idf == text.idf
    # The spec matches what transform produces.
    arrays = transform(_test(), preprocessor)
    assert {name: arrays[name].shape[1:] for name in arrays} == {n: s.shape for n, s in by_name.items()}


def test_image_columns_stay_paths_and_channels_come_from_the_first_image(tmp_path, png):
    first = png(tmp_path / "a.png", size=(12, 10))
    second = png(tmp_path / "b.png", color=(0, 9, 0), size=(12, 10))
    gray = png(tmp_path / "c.png", color=128, size=(4, 4), mode="L")
    schema = Schema(label="y", task="classification", kinds={"photo": "image"})
    train = pd.DataFrame({"photo": [str(first), str(second), str(gray)], "y": ["cat", "dog", "cat"]})
    fitted = fit(train, schema)
    assert fitted.image["photo"] == ImageShape(height=10, width=12, channels=3)
    assert fit(train, schema, image_size=(32, 24)).image["photo"] == ImageShape(height=32, width=24, channels=3)
    assert fit(train.iloc[::-1], schema).image["photo"] == ImageShape(height=10, width=12, channels=1)
    arrays = transform(train, fitted)
    assert arrays["image__photo"].tolist() == [str(first), str(second), str(gray)]
    assert fitted.model_spec().inputs[0].shape == (10, 12, 3)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # 144 million pixels: Pillow warns
def test_one_huge_first_image_does_not_size_the_model_and_no_pixel_is_decoded(tmp_path, png, monkeypatch):
    """Issue 19 #6: a 12000 x 12000 PNG of a few KB first, then digits: the digits' size wins."""
    from PIL import Image, ImageFile

    huge = tmp_path / "huge.png"
    Image.new("P", (12000, 12000), 0).save(huge, optimize=True)  # one colour: 17 KB on disk, 432 MB as RGB
    digits = [png(tmp_path / f"d{i}.png", color=(i, 0, 0), size=(28, 28)) for i in range(4)]
    schema = Schema(label="y", task="classification", kinds={"photo": "image"})
    train = pd.DataFrame({"photo": [str(huge), *map(str, digits)], "y": ["a", "b", "a", "b", "a"]})

    def no_decoding(image):
        raise AssertionError(f"{image.filename} was decoded: sizes come from headers")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    fitted = fit(train, schema)
    assert fitted.image["photo"] == ImageShape(height=28, width=28, channels=3)
    assert fitted.model_spec().inputs[0].shape == (28, 28, 3)


def test_the_median_image_size_is_scaled_down_to_the_longest_side_allowed(tmp_path, png):
    wide = [png(tmp_path / f"w{i}.png", color=(i, 0, 0), size=(40, 20)) for i in range(3)]  # (width, height)
    tall = png(tmp_path / "t.png", size=(20, 40))
    schema = Schema(label="y", task="classification", kinds={"photo": "image"})
    train = pd.DataFrame({"photo": [str(tall), *map(str, wide)], "y": ["a", "b", "a", "b"]})
    # Heights 40, 20, 20, 20 and widths 20, 40, 40, 40: the lower middle values are 20 and 40.
    assert _size(fit(train, schema)) == (20, 40)
    assert _size(fit(train, schema, max_image_side=10)) == (5, 10)  # the shape kept
    assert _size(fit(train, schema, max_image_side=10, image_size=(30, 30))) == (30, 30)  # set: it wins


def _size(fitted: Preprocessor) -> tuple[int, int]:
    shape = fitted.image["photo"]
    return shape.height, shape.width


def test_input_name():
    assert input_name("numeric", "mass") == "numeric"
    assert input_name("text", "note") == "text__note"


def test_fit_and_transform_do_not_mutate_their_input(preprocessor):
    train, test = _train(), _test()
    fit(train, SCHEMA)
    transform(test, preprocessor)
    encode_labels(test["species"], preprocessor)
    pd.testing.assert_frame_equal(train, _train())
    pd.testing.assert_frame_equal(test, _test())
