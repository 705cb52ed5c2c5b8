"""A stage's version follows the code it really runs: every project module its task uses, found
from the import statements, and nothing else.

The closure is checked against two things it does not compute itself: editing each file of a copy
of the repository (a version must change exactly when a file in its closure does), and Python's
own modulefinder, which reads the compiled imports of every module in a closure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from modulefinder import ModuleFinder
from pathlib import Path

import pytest

import tasks
from pipeline.common import code_version
from tasks.base import StageTask, versions

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGE_TASKS = sorted(
    (cls for cls in vars(tasks).values() if isinstance(cls, type) and issubclass(cls, StageTask)),
    key=lambda cls: cls.__name__,
)
PROJECT_IMPORT = re.compile(r"^\s*(?:from|import)\s+((?:pipeline|models)[\w.]*)", re.MULTILINE)


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repository")
    for folder in ("pipeline", "models", "tasks"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    yield root
    versions.forget()


def _project_files(root: Path) -> list[Path]:
    return sorted(path for folder in ("pipeline", "models") for path in (root / folder).rglob("*.py"))


def test_every_stage_task_has_code_of_its_own():
    assert {cls.__name__ for cls in STAGE_TASKS} >= {"IngestData", "TrainModel", "EvaluateModel", "RegisterModel"}
    for cls in STAGE_TASKS:
        assert versions.code_files(cls), cls


def test_editing_a_module_changes_exactly_the_versions_whose_closure_holds_it(copy):
    baseline = {cls: versions.stage_code(cls, copy) for cls in STAGE_TASKS}
    for path in _project_files(copy):
        relative = path.relative_to(copy).as_posix()
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        versions.forget()
        try:
            for cls in STAGE_TASKS:
                changed = versions.stage_code(cls, copy) != baseline[cls]
                assert changed == (relative in baseline[cls]), f"{cls.__name__} and {relative}"
        finally:
            path.write_bytes(original)
            versions.forget()


@pytest.mark.parametrize("cls", STAGE_TASKS, ids=lambda cls: cls.__name__)
def test_a_closure_holds_every_module_its_modules_import(cls):
    closure = set(versions.code_files(cls))
    for relative in sorted(closure):
        finder = ModuleFinder(path=[str(REPO_ROOT)])
        finder.run_script(str(REPO_ROOT / relative))
        imported = {
            Path(module.__file__).relative_to(REPO_ROOT).as_posix()
            for module in finder.modules.values()
            if module.__file__ and Path(module.__file__).name != "__init__.py" and module.__name__ != "__main__"
        }
        assert imported <= closure, f"{relative} imports {sorted(imported - closure)}, not in {cls.__name__}'s code"


@pytest.mark.parametrize("cls", STAGE_TASKS, ids=lambda cls: cls.__name__)
def test_what_a_task_class_imports_is_in_its_code(cls):
    import inspect

    closure = set(versions.code_files(cls))
    for module in PROJECT_IMPORT.findall(inspect.getsource(cls)):
        found = versions.Source(REPO_ROOT).file_of(module)
        if found is not None and found.name != "__init__.py":
            assert found.relative_to(REPO_ROOT).as_posix() in closure, f"{cls.__name__} imports {module}"


def test_training_code_holds_the_metrics_it_records_and_every_architecture():
    code = versions.code_files(tasks.TrainModel)
    assert "pipeline/stages/evaluation.py" in code  # the validation metrics tuning ranks trials by
    assert {"pipeline/stages/training.py", "pipeline/stages/features.py", "pipeline/stages/schema.py"} <= set(code)
    assert {path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "models").glob("*.py")} <= set(code)
    assert "pipeline/stages/monitoring.py" not in code


def test_the_code_cache_is_reused_until_a_file_it_read_changes(copy, tmp_path, monkeypatch):
    cache = tmp_path / "code_versions.json"
    first = versions.stage_code(tasks.TrainModel, copy, cache)
    versions.forget()

    def no_parsing(self, path):
        raise AssertionError(f"parsed {path} although nothing changed")

    with monkeypatch.context() as patched:
        patched.setattr(code_version.Source, "tree", no_parsing)
        assert versions.stage_code(tasks.TrainModel, copy, cache) == first  # from the file, in a "new process"
    versions.forget()
    evaluation = copy / "pipeline" / "stages" / "evaluation.py"
    original = evaluation.read_bytes()
    try:
        evaluation.write_bytes(original + b"\n# edited\n")
        edited = versions.stage_code(tasks.TrainModel, copy, cache)
        assert edited["pipeline/stages/evaluation.py"] != first["pipeline/stages/evaluation.py"]
        versions.forget()
        (copy / "models" / "resnet.py").write_text("def build(spec, settings):\n    raise NotImplementedError\n")
        assert "models/resnet.py" in versions.stage_code(tasks.TrainModel, copy, cache)  # a new architecture
    finally:
        evaluation.write_bytes(original)
        (copy / "models" / "resnet.py").unlink(missing_ok=True)
        versions.forget()


@pytest.mark.slow
def test_plan_names_the_changed_file_of_a_copy_of_the_repository(tmp_path, tabular_csv):
    repo = tmp_path / "repository"
    for folder in ("pipeline", "models", "tasks"):
        shutil.copytree(REPO_ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("luigi.cfg", "logging.ini"):
        shutil.copy(REPO_ROOT / name, repo / name)
    config = tmp_path / "copy.cfg"
    config.write_text(
        f"[overnight]\ndata_root = {tmp_path / 'data'}\ndatabase_url = sqlite:///{tmp_path / 'data' / 'db.sqlite'}\n"
        f"[dataset]\npath = {tabular_csv}\nlabel = label\n[TrainModel]\nepochs = 1\npatience = 0\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("OVERNIGHT_")}
    env.update(LUIGI_CONFIG_PATH=str(config), PYTHONPATH=str(repo), TF_CPP_MIN_LOG_LEVEL="3")

    def run(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *arguments], cwd=repo, env=env, capture_output=True, text=True, timeout=600
        )

    trained = run("-m", "luigi", "--module", "tasks", "TrainModel", "--local-scheduler")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "nothing to run" in run("-m", "tasks.cli", "plan", "TrainModel").stdout
    evaluation = repo / "pipeline" / "stages" / "evaluation.py"
    evaluation.write_text(evaluation.read_text() + "\n# a metric changed\n")
    planned = run("-m", "tasks.cli", "plan", "TrainModel")
    assert planned.returncode == 0, planned.stderr[-3000:]
    lines = planned.stdout.splitlines()
    assert [line.split("(")[0] for line in lines if not line.startswith(" ")] == ["TrainModel"]
    assert "    changed stage code: pipeline/stages/evaluation.py" in lines
