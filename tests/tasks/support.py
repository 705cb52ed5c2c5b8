"""Helpers for task tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import luigi
from luigi.task_register import Register


def build(*tasks) -> luigi.execution_summary.LuigiRunResult:
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def fresh(task_class, **params):
    """A new instance, its cached version forgotten (as in a new process)."""
    Register.clear_instance_cache()
    return task_class(**params)


def subprocess_env(config_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OVERNIGHT_DATABASE_URL"}
    env.update(LUIGI_CONFIG_PATH=str(config_path), TF_CPP_MIN_LOG_LEVEL="2")
    return env
