"""Unit tests for pipeline/stages/raw.py and pipeline/stages/fingerprint.py: finding, fingerprinting and reading
the data set's files."""

import gzip
import os

import pytest

from pipeline.common.columns import IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN, SOURCE_FILE, SOURCE_ROW
from pipeline.errors import DataError
from pipeline.stages import fingerprint, raw

# --- data_files --------------------------------------------------------------------------------


def test_data_files_of_one_file_is_that_file(csv_file):
    path = csv_file("one.csv", "a,b\n1,2\n")
    assert raw.data_files(path) == [path]


def test_data_files_of_a_folder_lists_tables_and_images_sorted(tmp_path, csv_file, png):
    b = csv_file("data/b.csv", "a\n1\n")
    a = csv_file("data/a.csv", "a\n1\n")
    image = png(tmp_path / "data" / "sub" / "x.PNG")
    csv_file("data/readme.txt", "not data")
    assert raw.data_files(tmp_path / "data") == [a, b, image]


def test_data_files_skips_hidden_files_and_folders(tmp_path, csv_file):
    visible = csv_file("data/a.csv", "a\n1\n")
    csv_file("data/.hidden.csv", "a\n2\n")
    csv_file("data/.cache/c.csv", "a\n3\n")
    assert raw.data_files(tmp_path / "data") == [visible]


def test_data_files_missing_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        raw.data_files(tmp_path / "nowhere")


def test_data_files_folder_without_data_is_a_data_error(tmp_path, csv_file):
    csv_file("data/notes.txt", "hello")
    with pytest.raises(DataError, match="no .csv"):
        raw.data_files(tmp_path / "data")


# --- read_raw: tables --------------------------------------------------------------------------


def test_read_raw_csv_adds_source_file_and_one_based_row(csv_file):
    path = csv_file("penguins.csv", "mass,island,species\n3750,Biscoe,Adelie\n,Dream,Gentoo\n4000,Dream,Adelie\n")
    table = raw.read_raw(path, "species")
    assert list(table.columns) == ["mass", "island", "species", SOURCE_FILE, SOURCE_ROW]
    assert table[SOURCE_FILE].tolist() == [str(path)] * 3
    assert table[SOURCE_ROW].tolist() == [1, 2, 3]


def test_read_raw_csv_reads_values_as_text(csv_file):
    path = csv_file("t.csv", "mass,code\n3750,007\n12.50,010\n")
    table = raw.read_raw(path, "code")
    # Text, not numbers: leading zeros and trailing zeros survive; validation types the columns.
    assert table["mass"].tolist() == ["3750", "12.50"]
    assert table["code"].tolist() == ["007", "010"]
    assert table["mass"].isna().sum() == 0


def test_read_raw_csv_missing_value_is_missing(csv_file):
    path = csv_file("t.csv", "mass,species\n,Adelie\n3,Gentoo\n")
    table = raw.read_raw(path, "species")
    assert table["mass"].isna().tolist() == [True, False]


def test_read_raw_concatenates_several_csv_files(tmp_path, csv_file):
    first = csv_file("data/part-1.csv", "x,y\n1,a\n2,b\n")
    second = csv_file("data/part-2.csv", "x,y\n3,a\n")
    table = raw.read_raw(tmp_path / "data", "y")
    assert table["x"].tolist() == ["1", "2", "3"]
    assert table[SOURCE_FILE].tolist() == [str(first), str(first), str(second)]
    assert table[SOURCE_ROW].tolist() == [1, 2, 1]  # counted per file
    assert list(table.index) == [0, 1, 2]


def test_read_raw_parquet(tmp_path):
    import pandas as pd

    path = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.5, 2.5], "y": ["a", "b"]}).to_parquet(path)
    table = raw.read_raw(path, "y")
    assert table["x"].tolist() == [1.5, 2.5]
    assert table[SOURCE_ROW].tolist() == [1, 2]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(bytes(range(128, 256)) * 16, id="binary-garbage"),
        pytest.param(gzip.compress(b"a,b\n1,2\n" * 200), id="gzip-named-csv"),
        pytest.param(b"", id="empty-file"),
    ],
)
def test_read_raw_unreadable_csv_is_a_data_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match="broken.csv: cannot be read as CSV") as error:
        raw.read_raw(path, "y")
    assert "\n" not in str(error.value)  # one line a person can act on


# --- read_raw: image folders -------------------------------------------------------------------


def test_is_image_folder(image_folder, tmp_path, csv_file):
    assert raw.is_image_folder(image_folder)
    csv_file("tables/a.csv", "a\n1\n")
    assert not raw.is_image_folder(tmp_path / "tables")
    assert not raw.is_image_folder(image_folder / "cat" / "c1.png")


def test_read_raw_image_folder_gives_image_label_and_stem_ids(image_folder):
    table = raw.read_raw(image_folder, "animal")
    assert list(table.columns) == [IMAGE_PATH_COLUMN, "animal", IMAGE_ID_COLUMN, SOURCE_FILE, SOURCE_ROW]
    assert table["animal"].tolist() == ["cat", "cat", "dog", "dog"]
    assert table[IMAGE_ID_COLUMN].tolist() == ["c1", "c2", "d1", "d2"]
    assert table[IMAGE_PATH_COLUMN].tolist() == [
        str(image_folder / c / f"{s}.png") for c, s in [("cat", "c1"), ("cat", "c2"), ("dog", "d1"), ("dog", "d2")]
    ]
    assert table[SOURCE_FILE].tolist() == table[IMAGE_PATH_COLUMN].tolist()


def test_read_raw_image_folder_ids_fall_back_to_relative_paths_when_stems_collide(tmp_path, png):
    root = tmp_path / "images"
    png(root / "cat" / "001.png")
    png(root / "dog" / "001.png", (0, 0, 255))
    png(root / "dog" / "002.png", (0, 0, 250))
    table = raw.read_raw(root, "label")
    assert table[IMAGE_ID_COLUMN].tolist() == ["cat/001", "dog/001", "dog/002"]
    assert table[IMAGE_ID_COLUMN].is_unique


# --- fingerprint -------------------------------------------------------------------------------


def test_fingerprint_is_stable_for_unchanged_files(tmp_path, csv_file):
    csv_file("data/a.csv", "x\n1\n")
    csv_file("data/b.csv", "x\n2\n")
    first = fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json")
    second = fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json")
    without_cache = fingerprint.fingerprint(tmp_path / "data", tmp_path / "other-cache.json")
    assert first == second == without_cache
    assert len(first) == 64


def test_fingerprint_changes_when_a_file_changes(tmp_path, csv_file):
    path = csv_file("data/a.csv", "x\n1\n")
    before = fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json")
    path.write_text("x\n1\n2\n")
    assert fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json") != before


def test_fingerprint_changes_when_content_changes_at_the_same_size(tmp_path, csv_file):
    path = csv_file("data/a.csv", "x\n1\n")
    before = fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json")
    stat = path.stat()
    path.write_text("x\n2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later write
    assert fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json") != before


def test_fingerprint_changes_when_a_file_is_added_or_renamed(tmp_path, csv_file):
    path = csv_file("data/a.csv", "x\n1\n")
    before = fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json")
    path.rename(tmp_path / "data" / "renamed.csv")
    renamed = fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json")
    csv_file("data/b.csv", "x\n2\n")
    added = fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json")
    assert len({before, renamed, added}) == 3


def test_fingerprint_does_not_rehash_unchanged_files(tmp_path, csv_file, monkeypatch):
    csv_file("data/a.csv", "x\n1\n")
    changed = csv_file("data/b.csv", "x\n2\n")
    calls = []
    real = fingerprint.file_sha256

    def counting(path):
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(fingerprint, "file_sha256", counting)
    cache = tmp_path / "cache" / "fingerprints.json"
    first = fingerprint.fingerprint(tmp_path / "data", cache)
    assert sorted(calls) == ["a.csv", "b.csv"]
    assert cache.exists()

    calls.clear()
    assert fingerprint.fingerprint(tmp_path / "data", cache) == first
    assert calls == []  # one stat per file, no reading

    changed.write_text("x\n2\n3\n")
    calls.clear()
    fingerprint.fingerprint(tmp_path / "data", cache)
    assert calls == ["b.csv"]  # only the changed file is reread


def test_fingerprint_survives_a_corrupt_cache(tmp_path, csv_file):
    csv_file("data/a.csv", "x\n1\n")
    expected = fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json")
    (tmp_path / "cache.json").write_text("{not json")
    assert fingerprint.fingerprint(tmp_path / "data", tmp_path / "cache.json") == expected


def test_fingerprint_of_a_single_file_uses_its_name(tmp_path, csv_file):
    first = csv_file("one/data.csv", "x\n1\n")
    second = csv_file("two/data.csv", "x\n1\n")
    assert fingerprint.fingerprint(first, tmp_path / "c.json") == fingerprint.fingerprint(second, tmp_path / "c.json")


def test_read_raw_strips_a_byte_order_mark_from_the_header(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffspecies,mass\nAdelie,3750\n".encode("utf-8"))
    assert list(raw.read_raw(path, "species").columns)[:2] == ["species", "mass"]


def test_read_raw_folder_with_a_table_and_its_images_reads_the_table(tmp_path, png):
    root = tmp_path / "data"
    image = png(root / "images" / "a.png")
    (root / "labels.csv").write_text(f"photo,species\n{image},Adelie\n")
    table = raw.read_raw(root, "species")
    assert table["photo"].tolist() == [str(image)]
    assert table[SOURCE_FILE].tolist() == [str(root / "labels.csv")]


def test_shards_cut_a_night_s_sorted_files_into_runs_of_about_equal_bytes(tmp_path):
    from pipeline.stages.data_files import shard_files

    sizes = {"a.csv": 100, "b.csv": 900, "c.csv": 500, "d.csv": 500, "e.csv": 0}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    files = sorted(tmp_path.iterdir())
    shards = [[file.name for file in shard_files(files, index, 2)] for index in range(2)]
    assert shards == [["a.csv", "b.csv"], ["c.csv", "d.csv", "e.csv"]]  # 1000 and 1000 bytes, in order
    assert [len(shard_files(files, index, 8)) for index in range(8)].count(0) >= 3  # more shards than files
    assert sum(len(shard_files(files, index, 8)) for index in range(8)) == len(files)
    assert shard_files(files, 0, 1) == files
    with pytest.raises(ValueError, match="shard 2 of 2"):
        shard_files(files, 2, 2)


def test_a_merge_refuses_shards_that_missed_a_file_or_scored_one_twice(tmp_path):
    from pipeline.artifacts.prediction import NightScores
    from tasks.prediction import _check_shards_cover_the_night

    night = tmp_path / "incoming"
    night.mkdir()
    for name in ("a.csv", "b.csv", "c.csv"):
        (night / name).write_text("x\n1\n")

    def shards(*cuts: list[str]) -> list:
        parts = []
        for files in cuts:
            part = NightScores(tmp_path / f"shard-{len(list(tmp_path.glob('shard-*')))}")
            part.path.mkdir()
            part.write_summary({"files": [str(night / name) for name in files]})
            parts.append(part)
        return parts

    with pytest.raises(DataError, match=r"changed while its shards were scored \(.*b.csv scored 2 times; .*c.csv not"):
        _check_shards_cover_the_night(shards(["a.csv", "b.csv"], ["b.csv"]), night)
    _check_shards_cover_the_night(shards(["a.csv", "b.csv"], ["c.csv"]), night)  # each file once: no error
