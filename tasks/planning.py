"""`overnight plan`: which tasks would run, and why, without running anything.

The reason compares what a task's version would be made of now with what the newest output of
that stage was made of (its version.json): a parameter, the raw data, a file of the stage's code,
or an upstream stage that reruns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from luigi.task import flatten

from pipeline.layout import TEMPORARY_MARK, VERSION_FILE
from tasks.base import StageTask

# made_of keys with a reason of their own; any other key that changed is "changed <key>".
EXPLAINED = ("task", "params", "upstream", "code", "fingerprint", "dataset", "version")


@dataclass(frozen=True)
class PlannedTask:
    task: str
    reason: str


def plan(root) -> list[PlannedTask]:
    """Incomplete tasks under root, upstream first; complete ones (and what they need) are skipped."""
    planned, seen = [], set()

    def visit(task) -> None:
        if task.task_id in seen:
            return
        seen.add(task.task_id)
        if task.complete():
            return
        for upstream in flatten(task.requires()):
            visit(upstream)
        planned.append(PlannedTask(str(task), reason(task, rerunning={p.task for p in planned})))

    visit(root)
    return planned


def reason(task, rerunning: set[str] = frozenset()) -> str:
    if not isinstance(task, StageTask):
        return "not done yet"
    previous = previous_made_of(task)
    if previous is None:
        return "no output yet"
    return "; ".join(differences(previous, task.made_of(), rerunning)) or "no output for this version yet"


def previous_made_of(task: StageTask) -> dict | None:
    """What the newest finished output of the same task in the same stage folder was made of."""
    folder = Path(task.output().path).parent
    candidates = [path for path in folder.glob(f"*/{VERSION_FILE}") if TEMPORARY_MARK not in str(path)]
    made_of = [(path.stat().st_mtime, json.loads(path.read_text())) for path in candidates]
    same_task = [(mtime, made) for mtime, made in made_of if made.get("task") == task.task_family]
    return max(same_task, key=lambda item: item[0])[1] if same_task else None


def differences(before: dict, now: dict, rerunning: set[str] = frozenset()) -> list[str]:
    reasons = []
    changed = _changed_keys(before.get("params", {}), now.get("params", {}))
    if changed:
        old, new = before.get("params", {}), now.get("params", {})
        reasons.append(
            "changed parameter: "
            + ", ".join(f"{name} {old.get(name, '(unset)')} -> {new.get(name, '(unset)')}" for name in changed)
        )
    if before.get("fingerprint") != now.get("fingerprint"):
        reasons.append("new data version (the raw files changed)")
    if before.get("dataset") != now.get("dataset"):
        reasons.append(
            "changed [dataset] setting: " + ", ".join(_changed_keys(before.get("dataset", {}), now.get("dataset", {})))
        )
    for key in sorted(set(before) | set(now)):
        if key not in EXPLAINED and before.get(key) != now.get(key):
            reasons.append(f"changed {key}")
    if before.get("code") != now.get("code"):
        reasons.append(code_change(before.get("code"), now.get("code")))
    upstream = _changed_keys(before.get("upstream", {}), now.get("upstream", {}))
    if upstream:
        reasons.append("upstream rerun: " + ", ".join(upstream))
    return reasons


def code_change(before, now) -> str:
    """ "changed stage code: <files>": the files added, edited or no longer used. An output made
    before versions named their files (its code is one hash) can only say that the code changed."""
    if not isinstance(before, dict) or not isinstance(now, dict):
        return "changed stage code (this release hashes each file the stage uses; versions change once)"
    return "changed stage code: " + ", ".join(_changed_keys(before, now))


def _changed_keys(before: dict, now: dict) -> list[str]:
    return sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))
