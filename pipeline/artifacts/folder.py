"""What every stage folder shares: its path, the files a finished one holds, JSON side files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


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
