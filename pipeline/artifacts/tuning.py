"""Tuning's files: one outcome per trial (05_training/trials/<version>.json) and the summary of a
search (05_training/tuning/<version>/tuning.json)."""

from __future__ import annotations

from pathlib import Path

from pipeline.artifacts.folder import StageFolder, read_json, write_json

TUNING = "tuning.json"


class TuningSummary(StageFolder):
    FILES = (TUNING,)

    def summary(self) -> dict:
        return read_json(self.file(TUNING))

    def write(self, summary: dict) -> None:
        write_json(self.path / TUNING, summary)


class TrialOutcome:
    """A trial's outcome file: parameters, status, and for a success the validation scores."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> dict:
        return read_json(self.path)

    def write(self, outcome: dict) -> None:
        write_json(self.path, outcome)
