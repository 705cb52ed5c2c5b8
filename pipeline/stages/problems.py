"""Problems found in input data: one kind of problem in one column of one file, with its rows.

Validation (pipeline/stages/validation.py) and nightly scoring report every problem as one line
(`Problem.line`) and keep it whole for the report (`Problem.as_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.common.columns import SOURCE_FILE, SOURCE_ROW

SHOWN_ROWS = 10  # rows named in a one-line problem; the report keeps more


@dataclass(frozen=True)
class Problem:
    """One kind of problem in one column of one file, with every row it hit."""

    file: str
    column: str
    expected: str
    example: str
    rows: tuple[int, ...]
    rejects_rows: bool = True

    def line(self) -> str:
        where = f"rows {rows_text(self.rows)}" if self.rows else "all rows"
        found = f", found {self.example}" if self.example else ""
        column = f"column {self.column!r}, " if self.column else ""
        return f"{self.file}: {column}{where}: expected {self.expected}{found}"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "column": self.column,
            "expected": self.expected,
            "example": self.example,
            "count": len(self.rows),
            "rows": list(self.rows[:1000]),
            "rejects_rows": self.rejects_rows,
        }


def rows_text(rows) -> str:
    """The first SHOWN_ROWS row numbers, and how many more: "2, 4, 6 (+3 more)"."""
    more = f" (+{len(rows) - SHOWN_ROWS} more)" if len(rows) > SHOWN_ROWS else ""
    return ", ".join(map(str, list(rows)[:SHOWN_ROWS])) + more


def collect_problems(table: pd.DataFrame, checks, rejects_rows: bool = True) -> tuple[list[Problem], pd.Series]:
    """Group bad rows by file, column and expectation; build each row's reason."""
    reasons = pd.Series(None, index=table.index, dtype=object)
    problems = []
    for bad, column, expected, found in checks:
        bad = bad.fillna(False).astype(bool)
        if not bad.any():
            continue
        reason = f"{column}: expected {expected}"
        reasons[bad] = reasons[bad].map(lambda old, r=reason: r if old is None or old != old else f"{old}; {r}")
        for file, rows in table[bad].groupby(SOURCE_FILE, sort=False):
            example = found[rows.index[0]]
            shown = "missing" if example is None or example != example else repr(str(example)[:60])
            problems.append(
                Problem(str(file), column, expected, shown, tuple(int(r) for r in rows[SOURCE_ROW]), rejects_rows)
            )
    return problems, reasons
