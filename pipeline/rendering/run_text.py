"""The plain-text, CSV and JSON forms of runs for the command line.

Pure functions from what pipeline/store/runs.py returns to text, so `overnight runs`, `show` and
`compare` (tasks/cli.py) only parse options and print. Times are UTC, ISO 8601.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

from pipeline.common.formatting import format_bytes, format_number
from pipeline.rendering.text import cell, format_cost, format_duration, format_table, iso, truncate
from pipeline.store.runs import SHORT_ID, metric_order, short_commit

TERMINAL_WIDTH = 100
FILES_SHOWN = 40  # of the files listed for a run (runs.MAX_FILES), `show` prints this many


def format_runs_table(rows: Sequence[dict[str, Any]]) -> str:
    """`overnight runs`: one line per run, at most ``TERMINAL_WIDTH`` characters.

    The night (of a nightly task) and the start are month-day, UTC; the output version and the
    data version are in `overnight show` and in the CSV and JSON forms. A headline marked ``v``
    is a training run's validation score (it has no test split yet).
    """
    if not rows:
        return "(no runs)"
    headers = ("run", "task", "night", "started", "status", "duration", "headline", "commit", "cost")
    # 8+16+5+11+9+8+8+9+8 = 82, plus 8 gaps of 2 = 98 <= TERMINAL_WIDTH.
    max_widths = (SHORT_ID, 16, 5, 11, 9, 8, 8, SHORT_ID + 1, 8)
    table = [
        (
            row["run_id"][:SHORT_ID],
            row["task"],
            row["night"][5:10] if row.get("night") else "",
            _month_day_time(row["started_at"]),
            row["status"],
            format_duration(row["duration_s"]),
            _headline(row),
            short_commit(row["git_commit"], row["git_dirty"]),
            format_cost(row["cost"]),
        )
        for row in rows
    ]
    text = format_table(headers, table, max_widths=max_widths, right={5, 6, 8})
    if any(row.get("headline_split") == "validation" for row in rows):
        text += "\nv: validation score (a training run has no test split)"
    return text


def _headline(row: dict[str, Any]) -> str:
    if row["headline"] is None:
        return ""
    return format_number(row["headline"]) + ("v" if row.get("headline_split") == "validation" else "")


def _output_text(details: dict[str, Any]) -> str:
    path = details["output_path"] or ""
    if path and details.get("output_gone"):
        return f"{path} (gone: collected by `overnight gc` or removed; the task's command rebuilds it)"
    return path


def _month_day_time(moment) -> str:
    """``12-01 15:15`` (UTC), from `iso`'s form."""
    text = iso(moment)
    return f"{text[5:10]} {text[11:16]}" if text else ""


def format_run(details: dict[str, Any]) -> str:
    """`overnight show`: everything recorded about a run, in sections, lines of at most 100."""
    lines = []
    facts = [
        ("run", details["run_id"]),
        ("task", details["task"]),
        ("status", details["status"]),
        ("version", details["version"] or ""),
        ("data version", details["data_version"] or ""),
        ("commit", _commit_text(details["git_commit"], details["git_dirty"])),
        ("started", iso(details["started_at"])),
        ("finished", iso(details["finished_at"])),
        ("host", f"{details['host'] or ''} (pid {details['pid']})" if details["pid"] is not None else details["host"]),
        ("output", _output_text(details)),
    ]
    dataset = details.get("dataset")
    if dataset:
        facts.insert(5, ("data set", f"{dataset['path']} ({dataset['rows']} rows)"))
    lines += _facts(facts)
    if details["error"]:
        lines += ["", "error"] + _wrapped(details["error"])

    lines += ["", "cost and resources"]
    gpu = details["gpu_name"] or "none"
    if details["gpu_name"] and details["gpu_s"] is not None:
        gpu += f" ({format_duration(details['gpu_s'])} used)"
    lines += _facts(
        [
            (label, value)
            for label, value in [
                ("wall", format_duration(details["duration_s"])),
                ("cpu", format_duration(details["cpu_s"])),
                ("peak memory", f"{details['peak_memory_mb']:.0f} MB" if details["peak_memory_mb"] is not None else ""),
                ("gpu", gpu),
                ("cost", format_cost(details["cost"])),
                ("rows", _rows_text(details["rows_in"], details["rows_rejected"])),
            ]
            if value
        ],
        indent="  ",
    ) or ["  (not measured)"]

    lines += ["", "parameters"]
    params = details["params"] or {}
    lines += _facts([(name, _scalar_text(value)) for name, value in params.items()], indent="  ") or ["  (none)"]

    hardware = details["hardware"] or {}
    lines += ["", "hardware"]
    lines += _facts(
        [
            (name, (", ".join(map(str, value)) or "none") if isinstance(value, list) else _scalar_text(value))
            for name, value in hardware.items()
        ],
        indent="  ",
    ) or ["  (not recorded)"]
    packages = details["packages"] or {}
    lines += ["", "packages"]
    lines += _wrapped(", ".join(f"{name} {version}" for name, version in packages.items()) or "(not recorded)")

    lines += ["", "files"]  # under the output path shown above
    files = details["files"]
    if files:
        table = [(item["path"], format_bytes(item["bytes"])) for item in files[:FILES_SHOWN]]
        lines.append(format_table(("file", "size"), table, max_widths=(84, 10), right={1}, indent="  "))
    else:
        lines.append("  (none: the output is missing or was removed)")
    if details["files_total"] > FILES_SHOWN:
        lines.append(f"  … and {details['files_total'] - FILES_SHOWN} more")

    lines += ["", *format_metrics(details["metrics"])]
    return "\n".join(line.rstrip() for line in lines)


def format_metrics(metrics: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The final figures as a name x split table, per-slice figures, epoch histories."""
    if not any(metrics.values()):
        return ["metrics", "  (none)"]
    lines = []
    if metrics["final"]:
        splits = sorted({item["split"] for item in metrics["final"]}, key=lambda split: metric_order((split, "", "")))
        names = list(dict.fromkeys(item["name"] for item in metrics["final"]))
        values = {(item["split"], item["name"]): item["value"] for item in metrics["final"]}
        table = [
            (name, *(format_number(values[(split, name)]) if (split, name) in values else "" for split in splits))
            for name in names
        ]
        lines += [
            "metrics",
            format_table(
                ("name", *splits),
                table,
                max_widths=(40, *[12] * len(splits)),
                right=range(1, len(splits) + 1),
                indent="  ",
            ),
        ]
    if metrics["slices"]:
        table = [
            (item["split"], item["slice"], item["name"], format_number(item["value"])) for item in metrics["slices"]
        ]
        lines += [
            "",
            "metrics per slice",
            format_table(
                ("split", "slice", "name", "value"), table, max_widths=(10, 40, 30, 12), right={3}, indent="  "
            ),
        ]
    if metrics["history"]:
        table = [
            (
                item["split"],
                item["name"] + (f" [{item['slice']}]" if item["slice"] else ""),
                item["epochs"],
                format_number(item["first"]),
                format_number(item["last"]),
                format_number(item["best"]),
                item["best_epoch"] if item["best_epoch"] is not None else "-",
            )
            for item in metrics["history"]
        ]
        lines += [
            "",
            "per epoch",
            format_table(
                ("split", "name", "epochs", "first", "last", "best", "at epoch"),
                table,
                max_widths=(10, 30, 6, 12, 12, 12, 8),
                right={2, 3, 4, 5, 6},
                indent="  ",
            ),
        ]
    return lines


def format_comparison(comparison: dict[str, Any]) -> str:
    """`overnight compare`: parameter differences, metric deltas, data and code when they differ."""
    lines = []
    for label in ("a", "b"):
        run = comparison[label]
        lines.append(
            truncate(
                f"{label.upper()}  {run['run_id'][:SHORT_ID]}  {run['task']}  {run['status']}  "
                f"started {iso(run['started_at'])}  version {(run['version'] or '')[:SHORT_ID]}",
                TERMINAL_WIDTH,
            )
        )
    lines += ["", "parameters that differ"]
    if comparison["parameters"]:
        table = [(item["name"], _absent_or(item, "a"), _absent_or(item, "b")) for item in comparison["parameters"]]
        # Wrapped, not cut: two long paths may differ only in their last characters.
        lines.append(format_table(("name", "A", "B"), table, max_widths=(30, 32, 32), indent="  ", wrap=True))
    else:
        lines.append("  (none)")
    for kind, title in (("data_version", "data version"), ("git", "commit")):
        if kind in comparison:
            lines += [
                "",
                f"{title} differs",
                f"  A  {comparison[kind]['a'] or '(none)'}",
                f"  B  {comparison[kind]['b'] or '(none)'}",
            ]
    lines += ["", "metrics"]
    if comparison["metrics"]:
        table = [
            (
                item["split"],
                item["slice"],
                item["name"],
                format_number(item["a"]),
                format_number(item["b"]),
                _signed(item["delta"]),
            )
            for item in comparison["metrics"]
        ]
        lines.append(
            format_table(
                ("split", "slice", "name", "A", "B", "B - A"),
                table,
                max_widths=(10, 24, 24, 10, 10, 10),
                right={3, 4, 5},
                indent="  ",
            )
        )
    else:
        lines.append("  (no final metrics in either run)")
    return "\n".join(line.rstrip() for line in lines)


def _facts(pairs: Sequence[tuple[str, Any]], indent: str = "") -> list[str]:
    """``label  value`` lines; a long value continues on the next lines, nothing cut off."""
    if not pairs:
        return []
    label_width = min(max(len(label) for label, _ in pairs), 28)
    value_width = TERMINAL_WIDTH - len(indent) - label_width - 2
    table = format_table(("", ""), pairs, max_widths=(label_width, value_width), indent=indent, wrap=True)
    return table.splitlines()[1:]  # without the (empty) header line


def _wrapped(text: str) -> list[str]:
    """Indented lines of at most TERMINAL_WIDTH characters; the text's own line breaks kept."""
    return [
        wrapped
        for line in text.splitlines() or [""]
        for wrapped in textwrap.wrap(
            line, width=TERMINAL_WIDTH, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
        )
        or ["  "]
    ]


def _commit_text(commit: str | None, dirty: bool | None) -> str:
    if commit is None:
        return "(unknown)"
    return commit + (" (uncommitted changes)" if dirty else "")


def _rows_text(rows_in: int | None, rows_rejected: int | None) -> str:
    if rows_in is None and rows_rejected is None:
        return ""
    return f"{cell(rows_in) or '?'} in, {cell(rows_rejected) or 0} rejected"


def _scalar_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return cell(value)


def _absent_or(item: dict[str, Any], side: str) -> str:
    if item["only_in"] is not None and item["only_in"] != side:
        return "(absent)"
    return _scalar_text(item[side])


def _signed(delta: float | None) -> str:
    if delta is None:
        return "-"
    text = format_number(delta)
    return text if text.startswith("-") else "+" + text
