"""The code blocks of the project's Markdown pages, as a reader copies them."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(?P<language>\w*)\n(?P<body>.*?)^```$", re.M | re.S)


def section(path: Path, heading: str) -> str:
    """The text under `heading` (e.g. "## SQL cookbook"), up to the next heading of its level or
    above; a `#` line inside a code block is a comment, not a heading."""
    level = len(heading.split(" ", 1)[0])
    lines, inside, in_code = [], False, False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        is_heading = not in_code and re.match(r"#+ ", line)
        if is_heading and line == heading:
            inside = True
            continue
        if inside and is_heading and len(line.split(" ", 1)[0]) <= level:
            break
        if inside:
            lines.append(line)
    if not inside:
        raise AssertionError(f"{path.name} has no heading {heading!r}")
    return "\n".join(lines) + "\n"


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced blocks of one language, in order, each as printed."""
    return [match["body"].strip() for match in FENCE.finditer(text) if match["language"] == language]
