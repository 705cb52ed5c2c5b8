"""What every stage folder shares: its path, the files a finished one holds, their integrity.

A finished folder is sealed with `integrity.json`: each file's size and SHA-256. Checking that a
folder is whole stays cheap (sizes only, `damage()`); whoever opens a file for reading checks its
hash (`file()`). A damaged folder is moved aside, never deleted, and the same command rebuilds it.
Folders sealed before integrity existed still count, and are sealed when next read.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.common.clock import utc_now
from pipeline.common.files import file_sha256
from pipeline.errors import DataError
from pipeline.layout import DAMAGED_MARK

logger = logging.getLogger(__name__)

INTEGRITY = "integrity.json"
SHOWN_HASH = 16  # hex digits of a hash in a message

# (path, size, mtime_ns) -> sha256 of the files this process has checked: a file is hashed once.
_checked: dict[tuple[str, int, int], str] = {}


class DamagedOutput(DataError):
    """A finished output's file is not what was written; the folder was moved aside."""


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_json(path: Path, document) -> None:
    Path(path).write_text(json.dumps(document, indent=2, default=str))


@dataclass(frozen=True)
class StageFolder:
    """A stage's output folder. Subclasses name the files a finished folder holds (FILES), which
    the task checks before the folder is renamed into place."""

    path: Path
    FILES: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def missing(self) -> list[str]:
        return [name for name in self.FILES if not (self.path / name).exists()]

    def __str__(self) -> str:
        return str(self.path)

    # -- integrity -----------------------------------------------------------------------------

    def seal(self, only: tuple[str, ...] | None = None) -> None:
        """Record every file's size and SHA-256 in integrity.json (the last file written); with
        `only`, those files' alone (the others are then read as they are)."""
        files = sorted(path for path in self.path.rglob("*") if path.is_file() and path.name != INTEGRITY)
        if only is not None:
            files = [path for path in files if path.relative_to(self.path).as_posix() in only]
        manifest = {
            path.relative_to(self.path).as_posix(): {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
            for path in files
        }
        temporary = self.path / f".{INTEGRITY}.{os.getpid()}.tmp"
        write_json(temporary, {"files": manifest})
        os.replace(temporary, self.path / INTEGRITY)

    def damage(self) -> str | None:
        """Why the folder is not whole, by file sizes alone; None when whole (or never sealed)."""
        manifest = self._manifest()
        for name, expected in (manifest or {}).items():
            path = self.path / name
            if not path.is_file():
                return f"{path} is missing"
            if path.stat().st_size != expected["bytes"]:
                return f"{path} has {path.stat().st_size} bytes, not {expected['bytes']}"
        return None

    def file(self, name: str) -> Path:
        """The path of one of the folder's files, once its content is checked against the seal.

        Raises:
            DamagedOutput: the file differs from what was written; the folder has been moved aside.
        """
        path = self.path / name
        manifest = self._manifest()
        if manifest is None:
            self._seal_unsealed()
            return path
        expected = manifest.get(name)
        if expected is None or not path.is_file():
            return path  # not a sealed file (optional, or added later): read as it is
        found, size = _sha256_once(path), path.stat().st_size
        if found != expected["sha256"] or size != expected["bytes"]:
            aside = self.move_aside()  # the size is read before: the file is no longer at `path`
            raise DamagedOutput(
                f"{path} is damaged: expected {expected['bytes']} bytes with sha256 {expected['sha256'][:SHOWN_HASH]}, "
                f"found {size} bytes with sha256 {found[:SHOWN_HASH]}; "
                f"the folder was moved to {aside} and the command that makes it rebuilds it"
            )
        return path

    def sealed_sha256(self, name: str) -> str | None:
        """The SHA-256 the seal records for a file (None for a folder sealed before integrity)."""
        return ((self._manifest() or {}).get(name) or {}).get("sha256")

    def move_aside(self) -> Path:
        """Rename the folder out of the way (never delete it): `<folder>.damaged-<UTC time>`."""
        aside = self.path.with_name(f"{self.path.name}{DAMAGED_MARK}{utc_now():%Y%m%dT%H%M%S%fZ}")
        os.replace(self.path, aside)
        logger.warning("moved the damaged output %s to %s", self.path, aside)
        return aside

    def _manifest(self) -> dict | None:
        try:
            return read_json(self.path / INTEGRITY)["files"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError):
            return {INTEGRITY: {"bytes": -1, "sha256": ""}}  # a torn seal: the folder is not whole

    def is_sealed(self) -> bool:
        return (self.path / INTEGRITY).exists()

    def _seal_unsealed(self) -> None:
        # A folder made before outputs carried their integrity: sealed now, as it is.
        try:
            self.seal()
        except OSError as error:
            logger.debug("could not seal %s: %s", self.path, error)


def _sha256_once(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _checked:
        _checked[key] = file_sha256(path)
    return _checked[key]
