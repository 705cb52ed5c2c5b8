"""Raw stage: find the data set's files, fingerprint them, read them into one table."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from pipeline.errors import DataError
from pipeline.schema import (IMAGE_EXTENSIONS, IMAGE_ID_COLUMN, IMAGE_PATH_COLUMN, SOURCE_FILE,
                             SOURCE_ROW)

logger = logging.getLogger(__name__)

TABLE_EXTENSIONS = (".csv", ".parquet", ".pq")


def data_files(path: str | Path) -> list[Path]:
    """The files that make up a data set: one file, or every table or image under a folder.

    Raises:
        DataError: the path does not exist or holds no table or image files.
    """
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{root}: no such file or folder")
    wanted = TABLE_EXTENSIONS + IMAGE_EXTENSIONS
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise DataError(f"{root}: no {', '.join(wanted)} files")
    return files


def is_image_folder(path: str | Path) -> bool:
    return Path(path).is_dir() and all(f.suffix.lower() in IMAGE_EXTENSIONS for f in data_files(path))


def fingerprint(path: str | Path, cache_file: str | Path) -> str:
    """A hash of the data set's file names and contents.

    File hashes are cached by (size, modification time), so an unchanged data set is not reread:
    a nightly check of gigabytes costs one stat per file.
    """
    root = Path(path)
    cache_path = Path(cache_file)
    cache = _load_cache(cache_path)
    digest = hashlib.sha256()
    changed = False
    for file in data_files(root):
        stat = file.stat()
        key = str(file.resolve())
        entry = cache.get(key)
        if entry is None or entry[:2] != [stat.st_size, stat.st_mtime_ns]:
            entry = [stat.st_size, stat.st_mtime_ns, file_sha256(file)]
            cache[key] = entry
            changed = True
        name = file.name if root.is_file() else file.relative_to(root).as_posix()
        digest.update(f"{name}\t{entry[2]}\n".encode())
    if changed:
        _save_cache(cache_path, cache)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _load_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _save_cache(path: Path, cache: dict) -> None:
    # Written beside, then renamed: a killed run leaves the old cache, never half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(cache))
    os.replace(temporary, path)


def read_raw(path: str | Path, label: str) -> pd.DataFrame:
    """One table of examples, with the source file and row of each.

    An image folder (one sub-folder per class) becomes a table of image paths, labels and ids
    (the file name without extension). Table files are read as text: the validation stage types
    the columns, so that a stray word in a numeric column is a rejected row, not a lost column.
    """
    if is_image_folder(path):
        return read_image_folder(path, label)
    # Images beside a table are the table's image column, not tables themselves.
    files = [file for file in data_files(path) if file.suffix.lower() in TABLE_EXTENSIONS]
    tables = [read_table_file(file) for file in files]
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    if table.empty:
        raise DataError(f"{path}: no rows (header only?)")
    return table


def read_table_file(file: Path) -> pd.DataFrame:
    try:
        if file.suffix.lower() == ".csv":
            table = pd.read_csv(file, dtype=str, keep_default_na=True, skipinitialspace=True)
        else:
            table = pd.read_parquet(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as error:
        raise DataError(f"{file}: cannot be read as {file.suffix.lstrip('.').upper()}: {_first_line(error)}") from None
    table[SOURCE_FILE] = str(file)
    table[SOURCE_ROW] = range(1, len(table) + 1)  # counted from 1, header not counted
    return table


def read_image_folder(path: str | Path, label: str) -> pd.DataFrame:
    root = Path(path)
    files = data_files(root)
    stems = [file.stem for file in files]
    # Ids must be unique: fall back to the path below the root when two classes share a stem.
    unique = len(set(stems)) == len(stems)
    return pd.DataFrame({
        IMAGE_PATH_COLUMN: [str(file) for file in files],
        label: [file.parent.name if file.parent != root else None for file in files],
        IMAGE_ID_COLUMN: stems if unique else [file.relative_to(root).with_suffix("").as_posix() for file in files],
        SOURCE_FILE: [str(file) for file in files],
        SOURCE_ROW: 1,
    })


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def batch_files(folder: str | Path) -> list[Path]:
    """A nightly folder's files, sub-folders included; a missing or empty folder is an empty night.

    Raises:
        DataError: the folder holds files this pipeline cannot read (a .gz, a spreadsheet): they
            would otherwise be skipped without a word.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    unreadable = [p for p in files if p.suffix.lower() not in TABLE_EXTENSIONS + IMAGE_EXTENSIONS]
    if unreadable:
        names = ", ".join(str(p.relative_to(folder)) for p in unreadable[:5])
        raise DataError(f"{folder}: cannot read {names}{' ...' if len(unreadable) > 5 else ''}; "
                        f"expected {', '.join(TABLE_EXTENSIONS + IMAGE_EXTENSIONS)} files")
    return files


def iter_batch(folder: str | Path, *, image_column: str | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A nightly batch in chunks of at most chunk_rows rows, so memory stays flat.

    For an image data set the folder is flat and each file name (without extension) is the
    example id; otherwise it holds table files in the training format, without the label.
    """
    files = batch_files(folder)
    if image_column:
        images = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
        for start in range(0, len(images), chunk_rows):
            part = images[start:start + chunk_rows]
            yield pd.DataFrame({image_column: [str(f) for f in part], IMAGE_ID_COLUMN: [f.stem for f in part],
                                SOURCE_FILE: [str(f) for f in part], SOURCE_ROW: 1})
        return
    for file in (f for f in files if f.suffix.lower() in TABLE_EXTENSIONS):
        yield from _table_chunks(file, chunk_rows)


def _table_chunks(file: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    first_row, yielded = 1, False
    try:
        if file.suffix.lower() == ".csv":
            chunks = pd.read_csv(file, dtype=str, keep_default_na=True, skipinitialspace=True, chunksize=chunk_rows)
        else:
            import pyarrow.parquet as pq

            chunks = (batch.to_pandas() for batch in pq.ParquetFile(file).iter_batches(batch_size=chunk_rows))
        for chunk in chunks:
            chunk = chunk.reset_index(drop=True)
            chunk[SOURCE_FILE] = str(file)
            chunk[SOURCE_ROW] = range(first_row, first_row + len(chunk))
            first_row += len(chunk)
            chunk.attrs["source"] = str(file)  # names the file even when the chunk has no rows
            yielded = True
            yield chunk
        if not yielded and file.suffix.lower() == ".csv":
            # Header only: no chunk came, but its columns must still be checked.
            header = pd.read_csv(file, dtype=str, nrows=0).assign(**{SOURCE_FILE: str(file), SOURCE_ROW: 0})
            header.attrs["source"] = str(file)
            yield header
    except pd.errors.EmptyDataError:
        return  # a zero-byte file is an empty batch
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        raise DataError(f"{file}: cannot be read as {file.suffix.lstrip('.').upper()}: {_first_line(error)}") from None


def feedback_examples(incoming_root: str | Path, labels: pd.DataFrame, *, label: str, id_column: str,
                      image_column: str | None, chunk_rows: int = 50_000) -> pd.DataFrame:
    """Nightly examples that have a late label, as training rows (raw, untyped, like read_raw).

    Args:
        incoming_root: the folder of nightly folders (`<data_root>/incoming`).
        labels: example_id and label, from the feedback table.
        id_column: the column holding example ids in the nightly files (image data: the file name).
        image_column: the image column for an image data set, else None.
    """
    if not image_column and not id_column:
        raise DataError("[dataset] include_feedback needs [dataset] id_column for a table: late labels "
                        "name their examples by id")
    by_id = dict(zip(labels["example_id"].astype(str), labels["label"]))
    found = []
    for night in sorted(p for p in Path(incoming_root).iterdir() if p.is_dir()) if Path(incoming_root).is_dir() else []:
        for chunk in iter_batch(night, image_column=image_column, chunk_rows=chunk_rows):
            ids = chunk[IMAGE_ID_COLUMN if image_column else id_column].astype(str)
            matched = chunk[ids.isin(by_id).to_numpy()].copy()
            matched[label] = ids[ids.isin(by_id)].map(by_id).to_numpy()
            found.append(matched)
    if not found:
        return pd.DataFrame()
    # The newest night wins when an example came in twice.
    table = pd.concat(found, ignore_index=True)
    key = IMAGE_ID_COLUMN if image_column else id_column
    return table.drop_duplicates(key, keep="last").reset_index(drop=True)


def read_feedback(files: list[Path], *, id_column: str, label: str) -> pd.DataFrame:
    """Late-label CSVs as one table: example_id, label, source (the file).

    The id column is the data set's `id_column`, or `image_id` for image folders; `example_id`
    is always accepted too, so a labeled export of the labeling queue can come straight back.

    Raises:
        DataError: a file has no id column or no label column.
    """
    frames = []
    for file in files:
        try:
            table = pd.read_csv(file, dtype=str)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise DataError(f"{file}: cannot be read as CSV: {_first_line(error)}") from None
        candidates = [c for c in (id_column, IMAGE_ID_COLUMN, "example_id") if c]
        present = [column for column in candidates if column in table.columns]
        if not present or label not in table.columns:
            raise DataError(f"{file}: expected an id column ({' or '.join(map(repr, candidates))}) and the label "
                            f"column {label!r}; the file has {', '.join(map(repr, table.columns))}")
        frames.append(pd.DataFrame({"example_id": table[present[0]], "label": table[label], "source": str(file)}))
    if not frames:
        return pd.DataFrame({"example_id": [], "label": [], "source": []}, dtype=object)
    return pd.concat(frames, ignore_index=True)
