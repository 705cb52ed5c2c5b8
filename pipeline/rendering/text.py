"""Text for a terminal and for files: aligned tables, durations, sizes, costs, UTC times, JSON and CSV.

Pure functions; pipeline/rendering/run_text.py builds the `overnight runs`, `show` and `compare`
pages from them. Table cells escape control characters (`cell`); CSV and JSON keep values as they
are, and the command line escapes what it prints (tasks/cli/app.py, `echo`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline.common.formatting import printable


def iso(moment: datetime | None) -> str:
    """``2025-11-25T14:03:07Z``: UTC, to the second; "" for None."""
    if moment is None:
        return ""
    if moment.tzinfo is None:  # the ledger stores UTC; a naive value can only be UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_duration(seconds: float | None) -> str:
    """``0.42s``, ``12.3s``, ``4m05s``, ``2h07m``; "" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_cost(cost: float | None) -> str:
    if cost is None or not math.isfinite(cost):
        return ""
    if cost == 0:
        return "0"
    if cost < 1:  # a short run on a cheap machine: cents and their fractions
        return f"{cost:.4f}"
    if cost < 10000:
        return f"{cost:.2f}"
    return f"{cost:.0f}"


def format_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    max_widths: Sequence[int] | None = None,
    right: Iterable[int] = (),
    indent: str = "",
    wrap: bool = False,
) -> str:
    """Columns padded to their widest cell, two spaces apart; columns in ``right`` (indexes)
    right-aligned. A cell over its column's maximum width ends in "…", or with ``wrap``
    continues on the next lines, cut at the width so that every character stays (paths)."""
    texts = [[cell(value) for value in row] for row in rows]
    header_texts = list(headers)
    widths = [max([len(header)] + [len(row[index]) for row in texts]) for index, header in enumerate(header_texts)]
    if max_widths is not None:
        widths = [min(width, limit) for width, limit in zip(widths, max_widths)]
    right = set(right)

    def lines(cells: Sequence[str]) -> list[str]:
        if wrap:
            pieces = [
                [cell[start : start + width] for start in range(0, len(cell), width)] or [""]
                for cell, width in zip(cells, widths)
            ]
        else:
            pieces = [[truncate(cell, width)] for cell, width in zip(cells, widths)]
        physical = []
        for number in range(max(len(column) for column in pieces)):
            parts = []
            for index, (column, width) in enumerate(zip(pieces, widths)):
                cell = column[number] if number < len(column) else ""
                parts.append(cell.rjust(width) if index in right else cell.ljust(width))
            physical.append((indent + "  ".join(parts)).rstrip())
        return physical

    return "\n".join(line for cells in [header_texts, *texts] for line in lines(cells))


def to_json(document: Any) -> str:
    """JSON with times as UTC ISO strings and NaN as null."""
    return json.dumps(_plain(document), indent=2, allow_nan=False)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV with a header; every value unabridged, times UTC ISO, nested values as JSON."""
    columns = list(columns or (rows[0].keys() if rows else ()))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(column)) for column in columns])
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (dict, list)):
        return json.dumps(_plain(value), sort_keys=True)
    return str(_plain(value))


def cell(value: Any) -> str:
    """A table cell's text: control characters in a value are escaped, so that a hostile id can
    neither drive the terminal nor break the table's lines."""
    return "" if value is None else printable(str(value))


def truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
