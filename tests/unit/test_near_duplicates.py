"""Unit tests for pipeline/stages/near_duplicates.py and the split that keeps them together."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.common.columns import DUPLICATE_KEY, EXAMPLE_ID, IMAGE_HASH_PREFIX, NEAR_KEY
from pipeline.stages.images import WHITE
from pipeline.stages.near_duplicates import _hash_edges, near_groups, normalise_text, survey
from pipeline.stages.schema import Schema
from pipeline.stages.split import SplitConfig, split

IMAGES = Schema(label="label", task="classification", kinds={"image": "image"})
TEXT = Schema(label="label", task="classification", kinds={"review": "text", "stars": "numeric"})


def _picture(seed: int, side: int) -> Image.Image:
    """A random blocky picture (8 x 8 blocks) drawn at `side` pixels: one picture at any size."""
    blocks = np.random.default_rng(seed).integers(0, 256, (8, 8)).astype(np.uint8)
    return Image.fromarray(blocks).resize((side, side), Image.Resampling.NEAREST)


def _validated(paths, labels) -> pd.DataFrame:
    table = pd.DataFrame({"image": [str(p) for p in paths], "label": labels})
    table[EXAMPLE_ID] = [p.stem for p in paths]
    table[DUPLICATE_KEY] = [f"k{i}" for i in range(len(paths))]  # no byte-identical files
    found = survey(table, IMAGES, background=WHITE, source="pictures")
    return table.join(found.keys)


def _three_sizes(folder, pictures: int):
    paths = []
    for seed in range(pictures):
        for side in (32, 48, 64):
            path = folder / f"p{seed}_{side}.png"
            _picture(seed, side).save(path)
            paths.append(path)
    return paths


def test_one_picture_at_three_sizes_and_turned_by_exif_is_one_group(tmp_path):
    paths = _three_sizes(tmp_path, 4)
    turned = _picture(0, 40).rotate(90, expand=True)  # stored on its side...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with EXIF saying how to turn it upright
    turned.save(tmp_path / "p0_photo.jpg", exif=exif, quality=95)
    table = _validated([*paths, tmp_path / "p0_photo.jpg"], ["a"] * (len(paths) + 1))
    found = near_groups(table, IMAGES, threshold=3)
    assert found.summary["groups"] == 4 and found.summary["examples"] == 13
    pairs = {frozenset((pair["a"].split("_")[0], pair["b"].split("_")[0])) for pair in found.summary["pairs"]}
    assert all(len(pair) == 1 for pair in pairs)  # only copies of one picture are paired


def test_threshold_zero_finds_nothing_to_join():
    table = pd.DataFrame({NEAR_KEY: ["x", "x"], IMAGE_HASH_PREFIX + "image": ["00ff", "00ff"], EXAMPLE_ID: ["a", "b"]})
    assert near_groups(table, IMAGES, threshold=0).summary == {"groups": 0, "examples": 0, "pairs": []}


def test_banded_search_finds_exactly_the_pairs_every_comparison_would():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, 40, dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, 120).astype(np.uint64)
    hashes = np.concatenate([base, base[rng.integers(0, 40, 120)] ^ flips])  # near copies, one bit off
    keys = np.array(["k"] * len(hashes))
    (a, b), _ = _hash_edges(keys, hashes, np.ones(len(hashes), bool), threshold=4)
    apart = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    every_pair = np.nonzero(apart < 4)
    # The same groups: equal hashes are chained rather than paired with each other.
    assert _groups(a, b, len(hashes)) == _groups(*every_pair, len(hashes))


def _groups(source, target, size: int) -> set[frozenset[int]]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(coo_matrix((np.ones(len(source)), (source, target)), shape=(size, size)))
    return {frozenset(np.flatnonzero(labels == label).tolist()) for label in np.unique(labels)}


def test_texts_equal_once_normalised_are_one_example_and_the_label_is_ignored():
    assert normalise_text("  The Cat,  sat!") == normalise_text("the cat sat") == "the cat sat"
    table = pd.DataFrame(
        {
            "review": ["Great product!", "great   PRODUCT", "Great product!", "Awful"],
            "stars": [5.0, 5.0, 4.0, 1.0],
            "label": ["good", "bad", "good", "bad"],
            EXAMPLE_ID: ["a", "b", "c", "d"],
        }
    )
    table = table.join(survey(table, TEXT, background=WHITE, source="reviews").keys)
    found = near_groups(table, TEXT, threshold=3)
    assert found.summary["groups"] == 1 and found.summary["examples"] == 2  # c has other stars
    assert found.summary["pairs"] == [{"a": "a", "b": "b"}]


def test_tabular_rows_with_the_same_typed_features_are_one_example():
    schema = Schema(label="label", task="classification", kinds={"x": "numeric", "colour": "categorical"})
    table = pd.DataFrame({"x": [1.0, 1.0, 2.0], "colour": ["red", "red", "red"], "label": ["p", "q", "p"]})
    table[EXAMPLE_ID] = ["r1", "r2", "r3"]
    table = table.join(survey(table, schema, background=WHITE, source="rows").keys)
    assert near_groups(table, schema, threshold=3).summary["examples"] == 2


def test_near_duplicates_stay_in_one_split_and_straddle_with_a_warning_when_off(tmp_path):
    paths = _three_sizes(tmp_path, 30)
    table = _validated(paths, [["a", "b"][i // 3 % 2] for i in range(len(paths))])
    near = near_groups(table, IMAGES, threshold=3)
    manifest, checks = split(table, label="label", task="classification", config=SplitConfig(seed=0), near=near)
    per_picture = manifest.assign(picture=manifest[EXAMPLE_ID].str.split("_").str[0]).groupby("picture")["split"]
    assert (per_picture.nunique() == 1).all()
    assert checks["near_duplicates"] | {"pairs": []} == {
        "threshold": 3,
        "kept_together": True,
        "groups": 30,
        "examples": 90,
        "pairs": [],
        "by": "image hash",
        "straddling": 0,
        "passed": True,
    }
    assert not [w for w in checks["warnings"] if "near-duplicates" in w]

    off = SplitConfig(seed=0, near_duplicate_threshold=0)
    manifest, checks = split(table, label="label", task="classification", config=off, near=near)
    per_picture = manifest.assign(picture=manifest[EXAMPLE_ID].str.split("_").str[0]).groupby("picture")["split"]
    assert (per_picture.nunique() > 1).any()
    assert checks["near_duplicates"]["straddling"] == (per_picture.nunique() > 1).sum()
    assert any("groups of near-duplicates straddle the splits" in w for w in checks["warnings"])


def test_many_blank_images_are_a_warning_that_names_the_reading(tmp_path):
    paths = []
    for i in range(10):
        pixels = np.zeros((8, 8, 4), np.uint8)
        pixels[2:6, 2:6, 3] = 255 if i < 2 else 0  # eight of ten hold nothing at all
        Image.fromarray(pixels, "RGBA").save(tmp_path / f"i{i}.png")
        paths.append(tmp_path / f"i{i}.png")
    table = pd.DataFrame({"image": [str(p) for p in paths], "label": "x", EXAMPLE_ID: [p.stem for p in paths]})
    found = survey(table, IMAGES, background=WHITE, source="icons")
    assert len(found.warnings) == 1
    assert found.warnings[0].startswith(
        "icons: 8 of 10 images in 'image' (80%) are nearly blank after decoding onto white"
    )
    dropped = survey(table, IMAGES, background=None, source="icons").warnings
    assert "10 of 10" in dropped[0] and "with transparency dropped" in dropped[0]


def test_rows_validated_without_near_keys_are_joined_by_nothing():
    table = pd.DataFrame({"stars": [1.0, 1.0], EXAMPLE_ID: ["a", "b"]})
    assert near_groups(table, TEXT, threshold=3).summary["groups"] == 0


def _damaged_png(path) -> None:
    """A PNG whose chunks all carry right checksums around pixel data that does not inflate."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"not zlib") + chunk(b"IEND", b""))


def test_an_image_that_passes_the_checks_but_does_not_decode_is_rejected_with_its_reason(tmp_path):
    from pipeline.common.columns import REASON, SOURCE_FILE, SOURCE_ROW
    from pipeline.stages.images import check_decodable
    from pipeline.stages.validation import ValidationResult

    _damaged_png(tmp_path / "bad.png")
    check_decodable(tmp_path / "bad.png")  # the structure checks pass it
    paths = _three_sizes(tmp_path, 1) + [tmp_path / "bad.png"]
    valid = _validated(paths, ["a"] * 4).assign(**{SOURCE_FILE: "labels.csv", SOURCE_ROW: [1, 2, 3, 4]})
    found = survey(valid, IMAGES, background=WHITE, source="pictures")
    result = ValidationResult(valid, pd.DataFrame(columns=[SOURCE_FILE, SOURCE_ROW, "image", REASON]))
    result.reject(found.unreadable["image"], "image", "an image that decodes whole")
    assert len(result.valid) == 3 and result.rejects[REASON].tolist() == ["image: expected an image that decodes whole"]
    assert [problem.rows for problem in result.problems] == [(4,)]
