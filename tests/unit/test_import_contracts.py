"""The layering rules of docs/architecture.md hold as import-linter contracts (pyproject.toml,
`[tool.importlinter]`), so `make test` catches a broken one as `make lint` does; and a contract
bites: an import it forbids, added to a copy of the tree, fails it with the rule's name.

test_layering.py checks what an import graph cannot: what `import tasks` loads when it runs.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")  # import-linter, a dev extra


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    assert LINT_IMPORTS.is_file(), f"{LINT_IMPORTS} is missing: install the dev extras (pip install -e '.[dev]')"
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(root)),  # the packages under root, not the installed ones
    )


def test_every_import_contract_is_kept():
    completed = _lint_imports(ROOT)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "0 broken" in completed.stdout


def test_a_forbidden_import_breaks_its_contract_by_name(tmp_path):
    for package in ("pipeline", "tasks", "models"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "pipeline" / "layout.py").open("a", encoding="utf-8") as layout:
        layout.write("\n\ndef _scheduler():\n    import luigi\n\n    return luigi\n")

    completed = _lint_imports(tmp_path)

    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "pipeline/ and models/ never import Luigi\n" in completed.stdout
    assert "pipeline.layout -> luigi" in completed.stdout
