"""`overnight plan`: which tasks would run, and why, without running anything.

The reason compares what a task's version would be made of now with what the newest output of
that stage was made of (its version.json): a parameter, the raw data, the stage's code, or an
upstream stage that reruns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from luigi.task import flatten

from tasks.base import VERSION_FILE, StageTask


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
    candidates = [path for path in folder.glob(f"*/{VERSION_FILE}") if "-luigi-tmp-" not in str(path)]
    made_of = [(path.stat().st_mtime, json.loads(path.read_text())) for path in candidates]
    same_task = [(mtime, made) for mtime, made in made_of if made.get("task") == task.task_family]
    return max(same_task, key=lambda item: item[0])[1] if same_task else None


def differences(before: dict, now: dict, rerunning: set[str] = frozenset()) -> list[str]:
    reasons = []
    old_params, new_params = before.get("params", {}), now.get("params", {})
    changed = [
        f"{name} {old_params.get(name, '(unset)')} -> {new_params.get(name, '(unset)')}"
        for name in sorted(set(old_params) | set(new_params))
        if old_params.get(name) != new_params.get(name)
    ]
    if changed:
        reasons.append("changed parameter: " + ", ".join(changed))
    if before.get("fingerprint") != now.get("fingerprint"):
        reasons.append("new data version (the raw files changed)")
    if before.get("dataset") != now.get("dataset"):
        settings = sorted(
            k
            for k in set(before.get("dataset", {})) | set(now.get("dataset", {}))
            if before.get("dataset", {}).get(k) != now.get("dataset", {}).get(k)
        )
        reasons.append("changed [dataset] setting: " + ", ".join(settings))
    for key in sorted(set(before) | set(now)):
        if key not in ("task", "params", "upstream", "code", "fingerprint", "dataset", "version") and before.get(
            key
        ) != now.get(key):
            reasons.append(f"changed {key}")
    if before.get("code") != now.get("code"):
        reasons.append("changed stage code")
    upstream = sorted(
        name
        for name in set(before.get("upstream", {})) | set(now.get("upstream", {}))
        if before.get("upstream", {}).get(name) != now.get("upstream", {}).get(name)
    )
    if upstream:
        reasons.append("upstream rerun: " + ", ".join(upstream))
    return reasons
