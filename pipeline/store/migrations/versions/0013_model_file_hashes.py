"""Every file a model scores with is hashed in the registry: `model_versions.files`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Migrations are frozen snapshots: spell tables and types out here, never import
pipeline.store.tables, so that this file keeps meaning what it meant when it shipped.

`sha256` holds model.keras's hash since 0002; a model folder's own seal (integrity.json) can be
deleted or rewritten together with a file, so the files a night reads from the folder besides
the model (preprocessor.json, reference.json) get theirs here too: {file name: sha256}, written at
registration. NULL for models registered before this revision: model.keras is checked by
`sha256`, the other files by the folder's seal, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_type = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
    # A plain ADD/DROP COLUMN, not a batch rebuild: views read model_versions, and SQLite (3.35 and
    # later) adds and drops a column in place, where a rebuild would break them.
    op.add_column("model_versions", sa.Column("files", json_type, nullable=True))


def downgrade() -> None:
    op.drop_column("model_versions", "files")
