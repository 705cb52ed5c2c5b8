"""A night folder under attack (issue 31, cases 1, 7 and 8): what is in it is read only when it is
a regular file inside it, what is not is named with its reason and never opened, copied or quoted,
and a quarantine never costs the disk a whole huge file.

- Case 1: a link out of the night folder (`x.csv -> /etc/shadow`), a broken link and a FIFO are
  quarantined by their reason alone; no byte of the linked file reaches batch.json, quarantine.csv,
  the quarantine folder or the problem lines. A link to a file inside the folder is read.
- Case 7: an image night names what it leaves out (a stray table, a hidden image) and refuses
  links out and broken links, in the night's record and its problem lines (the log).
- Case 8: a 2 GiB sparse file is quarantined by reference (its size), not copied; a damaged
  file's size is the size found, not 0; a loaded night's truncated predictions.parquet is
  rebuilt and loaded again on the next run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from pipeline.artifacts.folder import DamagedOutput, StageFolder
from pipeline.common.columns import IMAGE_PATH_COLUMN
from pipeline.stages.raw import batch_sources
from tests.reliability.corpus import CHUNK_ROWS, csv_text, good_rows, png
from tests.reliability.test_bad_input import _outputs, _score, images, tabular  # noqa: F401 - fixtures

SECRET = "root:*:20228:0:99999:7:::"  # /etc/shadow's first line, from a file outside the night


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "etc" / "shadow"
    path.parent.mkdir()
    path.write_text(f"{SECRET}\ndaemon:*:20228:0:99999:7:::\n")
    return path


def _everything_written(out: Path, summary) -> str:
    """Every text the night wrote or would print: its files and its record."""
    texts = [json.dumps(summary.as_dict())]
    texts += [path.read_bytes().decode("utf-8", "replace") for path in out.rglob("*") if path.is_file()]
    return "\n".join(texts)


def test_a_link_out_of_the_night_folder_is_refused_never_read_copied_or_quoted(tmp_path, tabular, secret):  # noqa: F811 - fixtures imported above
    _, preprocessor, model = tabular
    night, out = tmp_path / "incoming", tmp_path / "scored"
    (night / ".staged").mkdir(parents=True)
    out.mkdir()
    rows = good_rows()
    (night / "good.csv").write_text(csv_text(rows[:20], labeled=False))
    (night / ".staged" / "late.csv").write_text(csv_text(rows[20:], labeled=False))
    (night / "late.csv").symlink_to(night / ".staged" / "late.csv")  # a link inside the folder: read
    (night / "x.csv").symlink_to(secret)
    (night / "broken.csv").symlink_to(tmp_path / "gone.csv")
    os.mkfifo(night / "pipe.csv")  # opening it would wait for a writer forever

    summary = _score(batch_sources(night, image_column=None, chunk_rows=CHUNK_ROWS), preprocessor, model, out)

    assert summary.status == "partial" and summary.rows_scored == len(rows)  # both halves, the link's too
    reasons = {Path(entry["file"]).name: entry["reason"] for entry in summary.quarantined}
    assert reasons == {
        "broken.csv": f"{night / 'broken.csv'}: a broken link: not read",
        "pipe.csv": f"{night / 'pipe.csv'}: not a regular file (a device, FIFO or socket): not read",
        "x.csv": f"{night / 'x.csv'}: a link to a file outside the night folder: not read",
    }
    assert all(entry["rows"] == 0 for entry in summary.quarantined)  # never opened, so never counted
    assert SECRET not in _everything_written(out, summary) and "daemon" not in _everything_written(out, summary)
    assert not (out / "quarantine").exists()  # nothing copied: a reference in quarantine.csv only
    listed = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert sorted(Path(f).name for f in listed["file"]) == ["broken.csv", "pipe.csv", "x.csv"]
    assert set(listed["copy"]) == {""} and set(listed["sha256"]) == {""}
    assert {entry["file"] for entry in summary.skipped} == {str(night / ".staged")}


def test_training_data_with_a_link_out_of_its_folder_stops_in_one_line_unread(tmp_path, secret):
    from pipeline.errors import DataError
    from pipeline.stages.raw import read_raw

    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "good.csv").write_text(csv_text(good_rows(), labeled=True))
    (folder / "x.csv").symlink_to(secret)
    with pytest.raises(DataError) as error:
        read_raw(folder, "label")
    assert str(error.value) == f"{folder}: x.csv: a link to a file outside the folder: not read"


def test_an_image_night_names_every_file_it_skips_or_refuses(tmp_path, images, secret):  # noqa: F811 - fixtures imported above
    _, preprocessor, model = images
    night, out = tmp_path / "incoming", tmp_path / "scored"
    out.mkdir()
    for i in range(3):
        png(night / f"n{i}.png", shade=30 + i * 60)
    (night / "extra.csv").write_text("image_id\nn0\n")
    (night / "shadow.png").symlink_to(secret)
    (night / "broken.png").symlink_to(tmp_path / "gone.png")
    png(night / ".hidden.png", shade=10)

    summary = _score(
        batch_sources(night, image_column=IMAGE_PATH_COLUMN, chunk_rows=CHUNK_ROWS), preprocessor, model, out
    )

    assert (summary.rows_in, summary.rows_scored) == (3, 3)
    skipped = {Path(entry["file"]).name: entry["reason"] for entry in summary.skipped}
    assert skipped == {
        ".hidden.png": "a hidden file",
        "extra.csv": "not an image in an image night (expected .png, .jpg, .jpeg, .bmp, .gif)",
    }
    refused = {Path(entry["file"]).name: entry["reason"] for entry in summary.quarantined}
    assert refused == {
        "broken.png": f"{night / 'broken.png'}: a broken link: not read",
        "shadow.png": f"{night / 'shadow.png'}: a link to a file outside the night folder: not read",
    }
    assert summary.status == "partial"  # a refused file is quarantined, as in a table night
    for name in ("extra.csv", ".hidden.png", "shadow.png", "broken.png"):  # each named in a problem line (the log)
        assert any(str(night / name) in line for line in summary.problems), (name, summary.problems)
    assert summary.as_dict()["skipped"] == summary.skipped  # batch.json's record
    assert SECRET not in _everything_written(out, summary)


def test_a_huge_sparse_file_is_quarantined_by_reference_not_copied(tmp_path, tabular):  # noqa: F811 - fixtures imported above
    _, preprocessor, model = tabular
    night, out = tmp_path / "incoming", tmp_path / "scored"
    night.mkdir()
    out.mkdir()
    (night / "good.csv").write_text(csv_text(good_rows(), labeled=False))
    huge = night / "huge.csv"
    with open(huge, "wb") as handle:
        handle.truncate(2 << 30)  # 2 GiB of zeros that take no disk, as `truncate -s 2G` makes
    summary = _score(batch_sources(night, image_column=None, chunk_rows=CHUNK_ROWS), preprocessor, model, out)

    assert summary.status == "partial"
    [entry] = summary.quarantined
    assert entry["reason"] == f"{huge}: cannot be read as CSV: binary data: a NUL byte at byte 0 (line 1)"
    listed = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert listed.to_dict("records") == [
        {"file": str(huge), "reason": entry["reason"], "bytes": str(2 << 30), "sha256": "", "copy": ""}
    ]
    used = sum(path.stat().st_blocks * 512 for path in out.rglob("*") if path.is_file())
    assert used < 8 << 20, f"the scores folder takes {used} bytes of disk"


def test_a_small_bad_file_is_still_copied_whole_with_its_size_and_hash(tmp_path, tabular):  # noqa: F811 - fixtures imported above
    import hashlib

    _, preprocessor, model = tabular
    night, out = tmp_path / "incoming", tmp_path / "scored"
    night.mkdir()
    out.mkdir()
    garbage = os.urandom(3000)
    (night / "garbage.csv").write_bytes(garbage)
    _score(batch_sources(night, image_column=None, chunk_rows=CHUNK_ROWS), preprocessor, model, out)
    listed = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert listed[["bytes", "sha256", "copy"]].to_dict("records") == [
        {"bytes": "3000", "sha256": hashlib.sha256(garbage).hexdigest(), "copy": "quarantine/garbage.csv"}
    ]
    assert (out / "quarantine" / "garbage.csv").read_bytes() == garbage


def test_a_same_size_corruption_names_the_size_found_not_zero(tmp_path):
    folder = StageFolder(tmp_path / "stage")
    folder.path.mkdir()
    (folder.path / "batch.json").write_text('{"rows_scored": 40}')
    folder.seal()
    (folder.path / "batch.json").write_text('{"rows_scored": 41}')  # same size, other bytes
    with pytest.raises(DamagedOutput) as error:
        folder.file("batch.json")
    assert "expected 19 bytes with sha256" in str(error.value)
    assert "found 19 bytes with sha256" in str(error.value), str(error.value)
