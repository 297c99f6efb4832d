"""Model names → classes, so pipelines and bundles refer to models by name.

Adding a model is one file: a class in a module of this package that sets
``name: ClassVar[str] = "..."`` (and is not abstract) is found by reading the
package's source with ``ast`` — nothing is imported until the model is asked
for, so asking for ``"popularity"`` does not import torch. The class declares
its own ``tuning_space`` and ``similar_priority`` (see ``models.base``).
``register_model_path`` adds a model that lives elsewhere.
"""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path

from models.base import CandidateGenerator, Ranker

#: name → "module:Class" added by hand (models outside this package); found models are added below.
_MODEL_PATHS: dict[str, str] = {}


def _is_abstract(node: ast.ClassDef) -> bool:
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in item.decorator_list:
                if (isinstance(deco, ast.Name) and deco.id == "abstractmethod") or (
                    isinstance(deco, ast.Attribute) and deco.attr == "abstractmethod"
                ):
                    return True
    return False


def _declared_name(node: ast.ClassDef) -> str | None:
    for item in node.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(item, ast.AnnAssign):
            target, value = item.target, item.value
        elif isinstance(item, ast.Assign) and len(item.targets) == 1:
            target, value = item.targets[0], item.value
        if isinstance(target, ast.Name) and target.id == "name" and isinstance(value, ast.Constant):
            return value.value if isinstance(value.value, str) else None
    return None


@cache
def discovered() -> dict[str, str]:
    """name → "models.module:Class" for every concrete class of this package that declares a ``name``."""
    found: dict[str, str] = {}
    package = Path(__file__).resolve().parent
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and not _is_abstract(node):
                name = _declared_name(node)
                if name:
                    if name in found:
                        raise RuntimeError(f"two models are named {name!r}: {found[name]} and {path.stem}:{node.name}")
                    found[name] = f"models.{path.stem}:{node.name}"
    return found


def register_model_path(name: str, target: str) -> None:
    """Add a model under ``name`` given as ``"package.module:ClassName"``."""
    _MODEL_PATHS[name] = target


def _paths() -> dict[str, str]:
    return {**discovered(), **_MODEL_PATHS}


def model_names() -> list[str]:
    """Names accepted by ``model_class``."""
    return sorted(_paths())


def model_class(name: str) -> type[CandidateGenerator] | type[Ranker]:
    """The class registered under ``name``; a clear error lists the known names."""
    try:
        target = _paths()[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(model_names()) or 'none'}") from None
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls  # type: ignore[no-any-return]
