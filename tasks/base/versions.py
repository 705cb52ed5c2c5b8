"""The code a stage task's version hashes: the project modules its own code uses, transitively.

A task's stage code starts from what the task class itself uses: the pipeline functions,
artifacts and models its methods import or name, and the helpers of the tasks package it calls
(followed into their own bodies). From there pipeline/common/code_version.py follows every import
statement through pipeline/ and models/. The framework (tasks/base/, configuration, the run
ledger's engine, log filters) decides where an output lands and how its run is recorded, not
what the output holds, so it is not followed.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import luigi

from pipeline.common.code_version import PROJECT_PACKAGES, CodeCache, Source, file_hashes, module_closure, resolve

REPO_ROOT = Path(__file__).resolve().parents[2]
TASKS_PACKAGE = "tasks"
FRAMEWORK = ("tasks.base", "tasks.config", "tasks.recording", "tasks.errors")


def stage_code(task_class: type, root: Path | None = None, cache: Path | None = None) -> dict[str, str]:
    """Relative path -> hash of every source file the task's output depends on.

    Args:
        root: the repository whose sources are read (this one by default).
        cache: a file that keeps the result between processes (pipeline/common/code_version.py's
            CodeCache); None reads the sources every time.
    """
    return dict(_stage_code(task_class.__module__, task_class.__name__, Path(root or REPO_ROOT), cache))


@cache
def _stage_code(module: str, name: str, root: Path, cache_file: Path | None) -> dict[str, str]:
    key, disk = f"{root}:{module}.{name}", CodeCache(cache_file)
    hashes = disk.get(key, root)
    if hashes is None:
        source = Source(root)
        hashes = file_hashes(module_closure(used_modules(module, name, source), source), root)
        disk.put(key, root, source.reads, hashes)
    return hashes


def code_files(task_class: type, root: Path | None = None) -> list[str]:
    """The files stage_code hashes, relative to the root."""
    return list(stage_code(task_class, root))


def forget() -> None:
    """Read the sources again (they changed under this process: tests, a long-lived scheduler)."""
    _stage_code.cache_clear()


def used_modules(module: str, name: str, source: Source, seen: set | None = None) -> set[str]:
    """Project modules that the top-level class or function `name` of `module` uses."""
    seen = set() if seen is None else seen
    if (module, name) in seen:
        return set()
    seen.add((module, name))
    tree = source.tree(source.file_of(module))
    definitions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    bindings = _import_bindings(tree, module, source)
    used: set[str] = set()
    body = definitions[name]
    for node in ast.walk(body):
        if isinstance(node, ast.Import | ast.ImportFrom):
            used |= _from_import(node, module, source, seen)
        elif isinstance(node, ast.Name) and node.id != name:
            used |= _from_name(node.id, module, definitions, bindings, source, seen)
    return used


def _from_name(identifier, module, definitions, bindings, source, seen) -> set[str]:
    if identifier in definitions:  # a helper of the same module
        return used_modules(module, identifier, source, seen)
    if identifier in bindings:
        return _follow(*bindings[identifier], source, seen)
    return set()


def _from_import(node, module: str, source: Source, seen: set) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if _project(alias.name)}
    base = _absolute(node, module)
    used = set()
    for alias in node.names:
        used |= _follow(resolve(base, alias.name, source), alias.name, source, seen)
    return used


def _follow(target: str, name: str, source: Source, seen: set) -> set[str]:
    """A used name: a project module counts itself; a task-package helper is followed into."""
    if _project(target):
        return {target}
    if target.split(".")[0] != TASKS_PACKAGE or target.startswith(FRAMEWORK) or not source.file_of(target):
        return set()
    if _is_task(target, name):
        return set()  # an upstream task: its code is in its own version, which this one hashes
    tree = source.tree(source.file_of(target))
    if any(isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name for n in tree.body):
        return used_modules(target, name, source, seen)
    return set()


def _is_task(module: str, name: str) -> bool:
    found = getattr(sys.modules.get(module), name, None)
    return isinstance(found, type) and issubclass(found, luigi.Task)


def _import_bindings(tree: ast.Module, module: str, source: Source) -> dict[str, tuple[str, str]]:
    """Module-level names bound by imports -> (the module they come from, the imported name)."""
    bindings = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, module)
            for alias in node.names:
                bindings[alias.asname or alias.name] = (resolve(base, alias.name, source), alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                bindings[bound] = (alias.name if alias.asname else bound, "")
    return bindings


def _absolute(node: ast.ImportFrom, module: str) -> str:
    if not node.level:
        return node.module or ""
    package = module.rsplit(".", node.level)[0]
    return f"{package}.{node.module}" if node.module else package


def _project(module: str) -> bool:
    return module.split(".")[0] in PROJECT_PACKAGES
