"""What the data root holds: every versioned output with its size and what it was made of.

An output is a folder with a version.json (written by every stage task): its task, version and
upstream versions (`{"FitPreprocessor": "e488..."}`) are the lineage `overnight gc` keeps whole.
Scratch is what interrupted runs leave: Luigi's temporary folders and training checkpoints.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.layout import DAMAGED_MARK, STAGE_FOLDERS, TEMPORARY_MARK, VERSION_FILE, Layout

SCRATCH = ".work"  # 05_training/.work/<version>: checkpoints a killed training resumes from


@dataclass(frozen=True)
class Output:
    stage: str
    path: Path
    task: str  # "" when version.json cannot be read
    version: str
    upstream: dict[str, str] = field(default_factory=dict)  # task -> version
    bytes: int = 0
    modified: float = 0.0  # newest modification time of its files
    night: datetime.date | None = None  # a nightly output's date

    @property
    def key(self) -> tuple[str, str]:
        return self.task, self.version

    @property
    def place(self) -> tuple[str, ...] | None:
        return place(self.path)


@dataclass(frozen=True)
class Scratch:
    path: Path
    location: str  # the output it belongs to: the lock a running task holds
    bytes: int
    modified: float


def outputs(layout: Layout) -> list[Output]:
    """Every versioned output under the stage folders, by stage, then path."""
    found = []
    for stage, folder in STAGE_FOLDERS.items():
        for path in _output_folders(layout.root / folder):
            found.append(_output(stage, path))
    return sorted(found, key=lambda output: (list(STAGE_FOLDERS).index(output.stage), str(output.path)))


def scratch(layout: Layout) -> list[Scratch]:
    """Luigi's temporary folders and training checkpoints: what interrupted runs left."""
    found = []
    for folder in STAGE_FOLDERS.values():
        for path in _walk(layout.root / folder):
            if TEMPORARY_MARK in path.name:
                location = str(path.parent / path.name.split(TEMPORARY_MARK, 1)[0])
                found.append(Scratch(path, location, *_size(path)))
    work = layout.stage("training") / SCRATCH
    for path in sorted(work.iterdir()) if work.is_dir() else []:
        found.append(Scratch(path, str(layout.stage("training") / path.name), *_size(path)))
    return found


def online_image_days(layout: Layout) -> list[Scratch]:
    """The folders of images `overnight serve` kept, a day each, newest first."""
    root = layout.online_images()
    days = sorted((path for path in root.iterdir() if path.is_dir()), reverse=True) if root.is_dir() else []
    return [Scratch(path, str(path), *_size(path)) for path in days]


def place(path: str | Path) -> tuple[str, ...] | None:
    """Where an output lies below the data root, from its stage folder on (`("06_evaluation",
    "4ed4...")`): the registry and the runs ledger store paths as the run saw them (relative to
    its working folder, or absolute), so paths are compared by this, not as written."""
    parts = Path(path).parts
    stages = [index for index, part in enumerate(parts) if part in STAGE_FOLDERS.values()]
    return tuple(parts[stages[-1] :]) if stages else None


def chain(roots: Iterable[Output], index: dict[tuple[str, str], Output]) -> set[Path]:
    """The folders of `roots` and of everything they were made of, transitively."""
    kept, pending = set(), list(roots)
    while pending:
        output = pending.pop()
        if output.path in kept:
            continue
        kept.add(output.path)
        pending += [index[key] for key in output.upstream.items() if key in index]
    return kept


def _output_folders(root: Path) -> Iterator[Path]:
    """Folders holding a version.json, not looked into further; scratch and moved-aside skipped."""
    for path in _walk(root):
        if (path / VERSION_FILE).is_file() and TEMPORARY_MARK not in path.name and DAMAGED_MARK not in path.name:
            yield path


def _walk(root: Path) -> Iterator[Path]:
    """The folders below `root`, not below an output (a folder with a version.json) or scratch."""
    pending = [root] if root.is_dir() else []
    while pending:
        folder = pending.pop()
        for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
            if not entry.is_dir(follow_symlinks=False) or entry.name == SCRATCH:
                continue
            path = Path(entry.path)
            yield path
            if not (path / VERSION_FILE).is_file() and TEMPORARY_MARK not in entry.name:
                pending.append(path)


def _output(stage: str, path: Path) -> Output:
    try:
        made_of = json.loads((path / VERSION_FILE).read_text())
    except (OSError, ValueError):
        made_of = {}
    size, modified = _size(path)
    try:
        night = datetime.date.fromisoformat(path.parent.name)
    except ValueError:
        night = None
    return Output(
        stage=stage,
        path=path,
        task=str(made_of.get("task", "")),
        version=str(made_of.get("version", "")),
        upstream={str(task): str(version) for task, version in (made_of.get("upstream") or {}).items()},
        bytes=size,
        modified=modified,
        night=night,
    )


def _size(path: Path) -> tuple[int, float]:
    """Bytes of every file below `path`, and the newest modification time among them."""
    total, newest = 0, path.stat().st_mtime
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                stat = os.stat(os.path.join(folder, name), follow_symlinks=False)
            except OSError:
                continue  # removed while we looked
            total += stat.st_size
            newest = max(newest, stat.st_mtime)
    return total, newest
