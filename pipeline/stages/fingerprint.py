"""Content fingerprint of a data set: a hash of its file names and contents, with each file's
hash cached by (size, modification time)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.common.disk import write_cache
from pipeline.common.files import file_sha256
from pipeline.stages.data_files import data_files, list_folder


def fingerprint(path: str | Path, cache_file: str | Path) -> str:
    """A hash of the data set's file names and contents (and the names of files refused unread).

    File hashes are cached by (size, modification time), so an unchanged data set is not reread:
    a nightly check of gigabytes costs one stat per file.
    """
    root = Path(path)
    cache_path = Path(cache_file)
    cache = _load_cache(cache_path)
    digest = hashlib.sha256()
    changed = False
    # The cache is keyed by absolute path: the root resolved once, not every file (a folder of
    # images would pay a realpath per file on every completeness check).
    base, single = root.resolve(), root.is_file()
    for file in data_files(root, refused_ok=True):
        stat = file.stat()
        key = str(base if single else base / file.relative_to(root))
        entry = cache.get(key)
        if entry is None or entry[:2] != [stat.st_size, stat.st_mtime_ns]:
            entry = [stat.st_size, stat.st_mtime_ns, file_sha256(file)]
            cache[key] = entry
            changed = True
        name = file.name if single else file.relative_to(root).as_posix()
        digest.update(f"{name}\t{entry[2]}\n".encode())
    # A file refused unread (a link out of the folder, a FIFO) counts by its name and reason: when
    # it is fixed or removed, the night is another one.
    for path, why in list_folder(root).refused if not single else ():
        digest.update(f"{path.relative_to(root).as_posix()}\trefused: {why}\n".encode())
    if changed:
        _save_cache(cache_path, cache)
    return digest.hexdigest()


def _load_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _save_cache(path: Path, cache: dict) -> None:
    # Written beside, then renamed: a killed run leaves the old cache, never half a file; a full
    # disk leaves it too (a completeness check must not fail for want of a cache).
    write_cache(path, json.dumps(cache))
