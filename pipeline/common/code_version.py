"""Which source files a piece of code depends on, read from the import statements themselves.

A stage's version hashes the code that makes its output. Rather than a hand-kept list of files
(which drifts from the real imports), the files are found the way Python would load them: start
from what a task class uses, follow every `import` and `from ... import` (module level and inside
functions) into the project's packages, transitively. Only source text is read; nothing is
imported, so finding the code of a training costs no TensorFlow.

Packages that load their modules by name at run time (models/: one architecture per file) count
whole: static imports cannot see which file a name picks.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pipeline.common.disk import write_cache

PROJECT_PACKAGES = ("pipeline", "models")  # whose files make a stage's output
WHOLE_PACKAGES = ("models",)  # architectures are picked by name: any one may be the one
FILE_HASH_LENGTH = 16


@dataclass(frozen=True)
class Source:
    """The project's sources under one root (the repository), read through a parse cache."""

    root: Path
    reads: set[Path] = field(default_factory=set, compare=False)  # every file tree() parsed
    # One analysis asks for the same modules thousands of times; a Source lives for one analysis.
    _files: dict[str, Path | None] = field(default_factory=dict, compare=False, repr=False)

    def file_of(self, module: str) -> Path | None:
        """The file of a module or package, or None when the name is no project module."""
        if module not in self._files:
            base = self.root.joinpath(*module.split("."))
            candidates = (base.with_suffix(".py"), base / "__init__.py")
            self._files[module] = next((candidate for candidate in candidates if candidate.is_file()), None)
        return self._files[module]

    def tree(self, path: Path) -> ast.Module:
        self.reads.add(path)
        return _parse(path, path.read_bytes())


@lru_cache(maxsize=4096)
def _parse(path: Path, text: bytes) -> ast.Module:  # keyed by the bytes: an edited file is parsed again
    return ast.parse(text, filename=str(path))


def module_closure(roots: Iterable[str], source: Source, packages: tuple[str, ...] = PROJECT_PACKAGES) -> list[Path]:
    """The files of `roots` and of every project module they import, transitively; sorted.

    Args:
        roots: module names, e.g. "pipeline.stages.training"; names outside `packages` are skipped.
    """
    seen: set[str] = set()
    pending = [name for name in roots if _in(name, packages)]
    while pending:
        module = pending.pop()
        if module in seen or source.file_of(module) is None:
            continue
        seen.add(module)
        path = source.file_of(module)
        pending += [name for name in imported_modules(source.tree(path), module, source) if _in(name, packages)]
    files = {source.file_of(module) for module in seen}
    for package in WHOLE_PACKAGES:
        if any(_in(module, (package,)) for module in seen):
            files.update((source.root / package).rglob("*.py"))
    return sorted(path for path in files if "__pycache__" not in path.parts)


def imported_modules(tree: ast.AST, module: str, source: Source) -> set[str]:
    """Every module an import statement anywhere in `tree` loads, resolved to the module that
    defines the imported name (`from pipeline.stages import training` is pipeline.stages.training;
    a name a package re-exports is the module it comes from)."""
    names: set[str] = set()
    for node in _import_statements(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, source)
            names.update(resolve(base, alias.name, source) for alias in node.names)
    return names


@lru_cache(maxsize=4096)
def _import_statements(tree: ast.AST) -> tuple[ast.Import | ast.ImportFrom, ...]:
    """The import statements of a parsed file, found once: walking every node of a tree is most of
    the cost of following imports, and _parse hands out one tree per file content."""
    return tuple(node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom))


def resolve(module: str, name: str, source: Source) -> str:
    """The module that `from module import name` takes `name` from."""
    if source.file_of(f"{module}.{name}") is not None:
        return f"{module}.{name}"  # a submodule
    path = source.file_of(module)
    if path is not None and path.name == "__init__.py":
        for node in source.tree(path).body:  # a name the package re-exports from a submodule
            if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
                return resolve(_absolute(node, module, source), name, source)
    return module


def file_hashes(files: Iterable[Path], root: Path) -> dict[str, str]:
    """Relative path -> a short hash of the file's bytes, in path order."""
    hashes = {}
    for path in sorted(files):
        hashes[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()[:FILE_HASH_LENGTH]
    return hashes


def _absolute(node: ast.ImportFrom, module: str, source: Source) -> str:
    if not node.level:
        return node.module or ""
    package = module if _is_package(module, source) else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _is_package(module: str, source: Source) -> bool:
    path = source.file_of(module)
    return path is not None and path.name == "__init__.py"


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return module.split(".")[0] in packages


class CodeCache:
    """Code hashes kept on disk between processes, valid while no file they were read from changed.

    Finding a stage's code parses some forty modules (a third of a second); a command that only
    checks what is complete should not pay that every time. An entry is reused when every file
    its analysis read still has its size and modification time, and the packages that count whole
    still hold the same files; otherwise the code is read again.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._entries = _load(path) if path is not None else {}

    def get(self, key: str, root: Path) -> dict[str, str] | None:
        entry = self._entries.get(key)
        if (
            entry is None
            or entry["whole"] != _whole_listing(root)
            or any(_stamp(root / name) != stamp for name, stamp in entry["read"].items())
        ):
            return None
        return entry["hashes"]

    def put(self, key: str, root: Path, read: set[Path], hashes: dict[str, str]) -> None:
        if self.path is None:
            return
        stamps = {path.relative_to(root).as_posix(): _stamp(path) for path in read}
        self._entries[key] = {"read": stamps, "whole": _whole_listing(root), "hashes": hashes}
        # Written beside, then renamed: a killed run leaves the old cache, never half a file; a
        # full disk leaves it too (a completeness check must not fail for want of a cache).
        write_cache(self.path, json.dumps(self._entries))


def _stamp(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _whole_listing(root: Path) -> dict[str, list[str]]:
    return {
        package: sorted(p.relative_to(root).as_posix() for p in (root / package).rglob("*.py"))
        for package in WHOLE_PACKAGES
    }


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
