"""The newest migration this code ships, read from the migration files without Alembic: every
connection asks, and a complete night's check must not load Alembic to learn there is nothing
to upgrade (pipeline/store/database.py migrates)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@functools.cache
def head_revision() -> str | None:
    """The newest migration revision shipped with this code: the one no other migration follows.

    Read from the migration files' `revision` and `down_revision` lines, without Alembic: every
    connection asks, and a complete night's check must not load Alembic to learn there is
    nothing to upgrade. Branches (two heads) are left to Alembic to resolve.
    """
    revisions, followed = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        fields = _module_constants(path, ("revision", "down_revision"))
        if "revision" not in fields:
            continue  # not a migration (Alembic skips it too)
        revisions.add(fields["revision"])
        down = fields.get("down_revision")
        followed.update([down] if isinstance(down, str) else down or [])
    heads = revisions - followed
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    from pipeline.store.database import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _module_constants(path: Path, names: tuple[str, ...]) -> dict:
    """Module-level `name = <literal>` (annotated or not) of a Python file, without running it."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id in names and node.value is not None:
            found[target.id] = ast.literal_eval(node.value)
    return found
