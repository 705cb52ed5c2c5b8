"""The HTML both reports are built of: the page and its CSS, sections, tables, embedded images,
escaping and the formatting of values.

Everything here escapes what it is given unless it is :class:`Html` (markup already made safe),
so a class name, id or reason from the data can never become markup. Built with the standard
library (html.escape and string building); numpy only to tell integers when formatting numbers.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
from collections.abc import Iterable, Sequence

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; color: #212121; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 4px; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.subtitle { color: #616161; margin-top: 0; }
.banner { padding: 12px 16px; border-radius: 6px; font-size: 1.1em; margin: 16px 0; border-left: 8px solid; }
.banner.good { background: #e8f5e9; border-color: #2e7d32; color: #1b5e20; }
.banner.warn { background: #fff3e0; border-color: #ef6c00; color: #e65100; }
.banner.bad { background: #fdecea; border-color: #c62828; color: #b71c1c; }
.banner.neutral { background: #f5f5f5; border-color: #9e9e9e; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.92em; }
th, td { border: 1px solid #e0e0e0; padding: 4px 10px; text-align: left; vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; }
th { background: #f5f5f5; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.alert td { background: #fdecea; color: #b71c1c; font-weight: 600; }
tr.worst td { background: #fff3e0; }
tr.below td { background: #fff3e0; color: #e65100; }
.verdict { font-size: 1.05em; margin: 8px 0; }
.verdict.good { color: #1b5e20; }
.verdict.bad { color: #b71c1c; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { color: #616161; font-size: 0.9em; }
.examples { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 12px; }
.example { border: 1px solid #e0e0e0; border-radius: 6px; padding: 8px; font-size: 0.88em; }
.example .rank { font-weight: 700; }
.example .id { color: #616161; word-break: break-all; }
.example img.thumbnail { image-rendering: pixelated; border: 1px solid #bbb; margin: 4px 4px 4px 0;
                         height: 96px; width: auto; }
.example .snippet { background: #fafafa; border-left: 3px solid #bdbdbd; padding: 4px 6px; margin: 4px 0;
                    white-space: pre-wrap; word-break: break-word; }
.example table { font-size: 0.95em; }
.example td { white-space: normal; word-break: break-word; }
.wrong { color: #b71c1c; font-weight: 600; }
"""


class Html(str):
    """Markup that is already safe: inserted as is, where any other value is escaped."""


def escape(value) -> Html:
    return value if isinstance(value, Html) else Html(html.escape(as_text(value), quote=True))


def page(title: str, parts: Iterable[str]) -> str:
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + f'\n<p class="note">Generated {escape(generated)} by overnight.</p>\n</body>\n</html>\n'
    )


def section(heading: str, body: str) -> Html:
    anchor = "".join(c if c.isalnum() else "-" for c in heading.lower()).strip("-")
    return Html(f'<section id="{escape(anchor)}">\n<h2>{escape(heading)}</h2>\n{body}\n</section>')


def table(
    headers: Sequence,
    rows: Sequence[Sequence],
    *,
    numeric: Iterable[int] = (),
    wrap: Iterable[int] = (),
    row_classes: Sequence[str] | None = None,
) -> Html:
    """A table of escaped cells; `numeric` columns align right, `wrap` columns may break lines."""
    numeric, wrap = set(numeric), set(wrap)
    css = {**{position: ' class="wrap"' for position in wrap}, **{position: ' class="number"' for position in numeric}}
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = []
    for index, row in enumerate(rows):
        row_class = row_classes[index] if row_classes else ""
        cells = "".join(f"<td{css.get(position, '')}>{escape(cell)}</td>" for position, cell in enumerate(row))
        body.append(f'<tr class="{escape(row_class)}">{cells}</tr>' if row_class else f"<tr>{cells}</tr>")
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def image(png: bytes, alt: str, css_class: str = "plot") -> Html:
    data = base64.b64encode(png).decode("ascii")
    return Html(f'<img class="{css_class}" alt="{escape(alt)}" src="data:image/png;base64,{data}">')


def drawn(draw) -> bytes:
    buffer = io.BytesIO()
    draw(buffer)
    return buffer.getvalue()


def as_text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def as_float(value) -> float:
    return float("nan") if value is None else float(value)


def is_finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


def as_count(value) -> int:
    return int(value) if value is not None else 0
