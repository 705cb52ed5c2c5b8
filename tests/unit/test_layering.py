"""The layers stay apart: pipeline/ and models/ know nothing of Luigi or tasks/, tasks/ imports
TensorFlow only inside run(), and nothing unpickles.

Imports are checked in a fresh interpreter, so modules other tests imported do not count.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY_MODULES = [
    "pipeline",
    "pipeline.stages.raw",
    "pipeline.stages.validation",
    "pipeline.stages.split",
    "pipeline.stages.features",
    "pipeline.stages.evaluation",
    "pipeline.stages.schema",
    "pipeline.stages.registry",
    "pipeline.artifacts.model",
    "pipeline.artifacts.prediction",
    "pipeline.store.ledger",
    "pipeline.rendering.reports.nightly",
    "pipeline.layout",
    "models",
]
PICKLERS = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve"}


def _modules_after_importing(statement: str, *, top_level: bool = True) -> set[str]:
    """Names of every module loaded by `statement` in a fresh interpreter (top-level names only,
    or the full dotted names)."""
    name = "m.split('.')[0]" if top_level else "m"
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted({{{name} for m in sys.modules}})))"
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=_environment()
    )
    assert completed.returncode == 0, completed.stderr
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def _environment() -> dict:
    import os

    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(ROOT) + os.pathsep + environment.get("PYTHONPATH", "")
    return environment


def _python_files(*folders: str) -> list[Path]:
    files = [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]
    assert files, folders
    return files


def _imported_modules(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` in the file names (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_pipeline_and_models_do_not_import_luigi_tasks_or_tensorflow():
    loaded = _modules_after_importing("import " + ", ".join(LIBRARY_MODULES))
    assert "pipeline" in loaded and "models" in loaded
    assert not loaded & {"luigi", "tasks", "tensorflow", "keras"}


# What a stage loads when it runs, never when `luigi --module tasks` imports the package (every
# stage task with it) to find a night complete: the no-op rerun's floor is Luigi's own.
HEAVY = {"tensorflow", "keras", "pandas", "alembic", "scipy", "sklearn", "PIL", "pyarrow", "matplotlib"}


def test_importing_tasks_loads_luigi_and_sqlalchemy_core_only():
    loaded = _modules_after_importing("import tasks")
    assert "luigi" in loaded and "tasks" in loaded and "sqlalchemy" in loaded
    assert not loaded & HEAVY, sorted(loaded & HEAVY)
    full = _modules_after_importing("import tasks", top_level=False)
    assert "sqlalchemy.orm" not in full  # Core is what the markers and the ledger use


@pytest.mark.parametrize("path", _python_files("pipeline", "models"), ids=lambda p: str(p.relative_to(ROOT)))
def test_pipeline_and_models_files_never_import_luigi_or_tasks(path):
    imported = {name.split(".")[0] for name in _imported_modules(path)}
    assert not imported & {"luigi", "tasks"}
    text = path.read_text(encoding="utf-8")
    assert "import luigi" not in text and "from tasks" not in text


@pytest.mark.parametrize("path", _python_files("pipeline", "models", "tasks"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_imports_pickle(path):
    imported = {name.split(".")[0] for name in _imported_modules(path)}
    assert not imported & PICKLERS
    assert "allow_pickle=True" not in path.read_text(encoding="utf-8")
