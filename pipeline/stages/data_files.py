"""Which files make up a data set or a night (light: a completeness check lists and hashes
them without loading pandas; pipeline/stages/raw.py reads them)."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import DataError

TABLE_EXTENSIONS = (".csv", ".parquet", ".pq")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


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
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in wanted
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise DataError(f"{root}: no {', '.join(wanted)} files")
    return files


def is_image_folder(path: str | Path) -> bool:
    return Path(path).is_dir() and all(f.suffix.lower() in IMAGE_EXTENSIONS for f in data_files(path))


def batch_files(folder: str | Path) -> list[Path]:
    """A nightly folder's files, sub-folders included; a missing or empty folder is an empty night.

    Raises:
        DataError: the folder holds files this pipeline cannot read (a .gz, a spreadsheet): they
            would otherwise be skipped without a word.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    unreadable = [p for p in files if p.suffix.lower() not in TABLE_EXTENSIONS + IMAGE_EXTENSIONS]
    if unreadable:
        names = ", ".join(str(p.relative_to(folder)) for p in unreadable[:5])
        raise DataError(
            f"{folder}: cannot read {names}{' ...' if len(unreadable) > 5 else ''}; "
            f"expected {', '.join(TABLE_EXTENSIONS + IMAGE_EXTENSIONS)} files"
        )
    return files
