"""Stand-in tasks for the card and scheduler tests: GPU tasks that hold a card for a moment and say
which they got; a task that fails after a moment."""

from __future__ import annotations

import json
import os
import time

import luigi

from pipeline.errors import DataError
from tasks.base import ONE_CARD, Outcome, RecordedTask
from tasks.config import layout


class HoldCard(RecordedTask):
    gpu = ONE_CARD
    number = luigi.IntParameter()
    seconds = luigi.FloatParameter(default=2.0)

    @property
    def version(self) -> str:
        return f"hold-{self.number}"

    def output(self):
        return luigi.LocalTarget(str(layout().root / "held" / f"{self.number}.json"))

    def execute(self) -> Outcome:
        time.sleep(self.seconds)
        with self.output().open("w") as handle:
            json.dump({"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}, handle)
        return Outcome()


class HoldCards(luigi.WrapperTask):
    count = luigi.IntParameter()

    def requires(self):
        return [HoldCard(number=number) for number in range(self.count)]


class FailLater(RecordedTask):
    seconds = luigi.FloatParameter(default=4.0)

    @property
    def version(self) -> str:
        return "fail-later"

    def output(self):
        return luigi.LocalTarget(str(layout().root / "never" / "fail-later.json"))

    def execute(self) -> Outcome:
        time.sleep(self.seconds)
        raise DataError("failed on purpose, after a moment")
