"""Targets that live in the database: an output is there when the configured database says so."""

from __future__ import annotations

import luigi

from tasks import recording


class Marked(luigi.Target):
    """Exists when the configured database holds the output marker (task, version)."""

    def __init__(self, task: str, version: str):
        self.task, self.version = task, version

    def exists(self) -> bool:
        return recording.is_marked(self.task, self.version)

    def __str__(self) -> str:
        return f"output_markers({self.task}, {self.version})"
