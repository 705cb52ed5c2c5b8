"""What the database tests share: a model in the registry that no folder backs."""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.store import registry


def register_model(engine: sa.Engine, version: str, task: str = "classification") -> None:
    """A registered model with only what the views and quality figures read: its task."""
    registry.register(
        engine,
        version=version,
        run_id=None,
        path=f"models/{version}",
        sha256="0" * 64,
        task=task,
        data_version="d1",
        evaluation_path=None,
        headline=None,
        metrics=None,
        actor="alice",
    )
