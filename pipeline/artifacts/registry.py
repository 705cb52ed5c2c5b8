"""07_registry/<version>/: the registration gate's decision about one model."""

from __future__ import annotations

from pipeline.artifacts.folder import StageFolder, read_json, write_json

REGISTRATION = "registration.json"


class Registration(StageFolder):
    FILES = (REGISTRATION,)

    def decision(self) -> dict:
        return read_json(self.file(REGISTRATION))

    def write(self, decision: dict) -> None:
        write_json(self.path / REGISTRATION, decision)
