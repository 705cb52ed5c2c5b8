"""Print the project's dependencies, one a line, read from setup.py without running it.

The image installs them in a layer of its own before the source is copied (Dockerfile), so a
change to the code alone does not reinstall TensorFlow. setup.py stays their one list.

    python3 requirements.py setup.py [cpu|gpu]

cpu: TensorFlow's CPU-only build (tensorflow-cpu, the same range): the same module in a third of
the plain wheel's size. gpu: TensorFlow with CUDA from pip (setup.py's `gpu` extra).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def setup_arguments(path: Path) -> dict:
    """The literal keyword arguments of the setup() call in `path`."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup":
            return {word.arg: ast.literal_eval(word.value) for word in node.keywords if _literal(word.value)}
    raise SystemExit(f"{path}: no setup() call")


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False


def requirements(arguments: dict, variant: str) -> list[str]:
    if variant not in ("cpu", "gpu"):
        raise SystemExit(f"VARIANT is cpu or gpu, not {variant!r}")
    wanted = list(arguments["install_requires"])
    (plain,) = [r for r in wanted if r.startswith("tensorflow>")]
    if variant == "gpu":
        (chosen,) = [r for r in arguments["extras_require"]["gpu"] if r.startswith("tensorflow[and-cuda]")]
    else:
        chosen = "tensorflow-cpu" + plain.removeprefix("tensorflow")
    return [chosen if r == plain else r for r in wanted]


if __name__ == "__main__":
    print("\n".join(requirements(setup_arguments(Path(sys.argv[1])), sys.argv[2] if len(sys.argv) > 2 else "cpu")))
