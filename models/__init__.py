"""Keras architectures, picked by name.

Every architecture is one module in this package defining

    def build(spec: ModelSpec, settings: ArchitectureSettings) -> keras.Model:

and the module name is the architecture name. To add one, drop a file here, say
``models/resnet.py`` with a top-level ``def build(spec, settings)``; architecture_names()
then lists "resnet" and build_model("resnet", spec) builds it. Nothing else to register.

What a builder must keep (models/branches.py has helpers for each):
- Functional API; one ``keras.Input`` per ``spec.inputs`` entry, named ``input_spec.name``,
  float32 for numeric and image, int32 for categorical and text (``branches.make_inputs``),
  so the model takes a dict of arrays keyed by input name.
- The output of ``branches.head``: float32 logits named "logits" for classification, a
  prediction in label units named "prediction" for regression.
- An uncompiled model; no I/O, no training, no luigi: the training stage owns all that.
- A ``ValueError`` naming what it got when the spec does not fit the architecture.

Modules whose names start with "_", the helpers in HELPER_MODULES, and modules with no
top-level ``def build(`` are not architectures, so a shared helper file needs no special
name. Builders are imported only when built: importing this package does not import Keras,
so the pipeline can list and validate architecture names cheaply.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import TYPE_CHECKING

from models.spec import ArchitectureSettings, InputSpec, ModelSpec

if TYPE_CHECKING:
    import keras

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "ArchitectureSettings",
    "InputSpec",
    "ModelSpec",
    "architecture_names",
    "build_model",
]

DEFAULT_ARCHITECTURE = "auto"
HELPER_MODULES = frozenset({"branches", "spec"})

_PACKAGE_DIRECTORY = Path(__file__).resolve().parent
# Read from the source rather than by importing, which would import Keras.
_DEFINES_BUILD = re.compile(r"^def build\(", re.MULTILINE)


def architecture_names() -> list[str]:
    """Names of the architectures in this package, sorted; imports none of them."""
    names = [
        module_info.name
        for module_info in pkgutil.iter_modules([str(_PACKAGE_DIRECTORY)])
        if not module_info.name.startswith("_")
        and module_info.name not in HELPER_MODULES
        and _defines_build(module_info)
    ]
    return sorted(names)


def build_model(name: str, spec: ModelSpec, settings: ArchitectureSettings | None = None) -> keras.Model:
    """Builds the named architecture for spec, uncompiled.

    Args:
        name: one of architecture_names().
        spec: the inputs, task and output size from the features stage.
        settings: hyperparameters; ArchitectureSettings() defaults when None.

    Returns:
        A functional keras.Model taking a dict of arrays keyed by input name.

    Raises:
        ValueError: unknown name, or a spec the architecture cannot take.
    """
    names = architecture_names()
    if name not in names:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(names)}")
    # A file added after the interpreter started must be visible to the import system too.
    importlib.invalidate_caches()
    module = importlib.import_module(f"{__name__}.{name}")
    return module.build(spec, settings if settings is not None else ArchitectureSettings())


def _defines_build(module_info: pkgutil.ModuleInfo) -> bool:
    """Whether the module's source has a top-level `def build(`; False without a source."""
    if module_info.ispkg:
        source_path = _PACKAGE_DIRECTORY / module_info.name / "__init__.py"
    else:
        source_path = _PACKAGE_DIRECTORY / f"{module_info.name}.py"
    if not source_path.is_file():
        return False
    return _DEFINES_BUILD.search(source_path.read_text(encoding="utf-8")) is not None
