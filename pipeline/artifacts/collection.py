"""Which outputs `overnight gc` keeps, and why; everything else is collectable.

Kept, always, each with its whole upstream chain (raw snapshot, validation, split, features,
training, evaluation): the production and previous production models, every registered model
that is not archived, the last `keep_nights` nights' outputs, and whatever a run of the last
`keep_days` days produced; and the registration of any kept evaluation. While a run is in
progress, every output of its stage and of the stages before it stays (what it reads is not
recorded until it finishes). An output whose version.json cannot be read is kept too: its
lineage is unknown. A collected output is rebuilt
by the same task command, as any missing output is; the database keeps every row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.artifacts.inventory import Output, chain, place
from pipeline.layout import STAGE_FOLDERS


@dataclass(frozen=True)
class Verdict:
    output: Output
    kept_by: str  # why it stays; "" when it may be collected

    @property
    def collectable(self) -> bool:
        return not self.kept_by


@dataclass(frozen=True)
class Roots:
    """What refers to an output, from the registry and the runs ledger (tasks/cli/disk.py)."""

    models: dict[str, str]  # TrainModel version -> why ("production model", ...)
    evaluations: dict[Path, str]  # a registered model's evaluation folder, as recorded -> why
    recent: dict[Path, str]  # output folders runs of the last keep_days days produced, as recorded -> why
    keep_nights: int
    running: dict[str, str] = field(default_factory=dict)  # task of a run in progress -> why


def verdicts(found: Iterable[Output], roots: Roots) -> list[Verdict]:
    """Each output with the first reason that keeps it (in the order of the module docstring)."""
    found = list(found)
    index = {output.key: output for output in found if output.task}
    by_place = {output.place: output for output in found}
    kept: dict[Path, str] = {}

    def keep(outputs: Iterable[Output], why: str) -> None:
        for path in chain(outputs, index):
            kept.setdefault(path, why)

    for version, why in roots.models.items():
        keep([output for output in found if output.key == ("TrainModel", version)], why)
    for path, why in roots.evaluations.items():
        keep([by_place[place(path)]] if place(path) in by_place else [], why)
    nights = sorted({output.night for output in found if output.night is not None}, reverse=True)
    recent_nights = set(nights[: max(roots.keep_nights, 0)])
    keep([output for output in found if output.night in recent_nights], f"one of the last {roots.keep_nights} nights")
    for path, why in roots.recent.items():
        keep([by_place[place(path)]] if place(path) in by_place else [], why)
    stages = list(STAGE_FOLDERS)
    stage_of = {output.task: output.stage for output in found if output.task}
    for task, why in roots.running.items():
        # A task never seen finishing: every stage stays.
        last = stages.index(stage_of[task]) if task in stage_of else len(stages) - 1
        for output in found:
            if stages.index(output.stage) <= last:
                kept.setdefault(output.path, why)
    for output in found:
        if not output.task:
            kept.setdefault(output.path, "no readable version.json: its lineage is unknown")
        elif output.task == "RegisterModel" and index.get(("EvaluateModel", output.upstream.get("EvaluateModel", ""))):
            evaluation = index[("EvaluateModel", output.upstream["EvaluateModel"])]
            if evaluation.path in kept:
                kept.setdefault(output.path, "the registration of a kept model")
    return [Verdict(output, kept.get(output.path, "")) for output in found]
