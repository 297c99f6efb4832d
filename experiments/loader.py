"""Read definitions from YAML files and turn every mistake into one clear message.

A file holds one definition (a mapping) or several (a list of mappings); a
folder holds any number of ``*.yaml`` / ``*.yml`` files. Definitions are
validated one by one (``experiments.spec``) and then together
(``experiments.validation``), so a folder that loads is a folder that can run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.errors import DataFormatError, NotFoundError
from experiments.spec import Experiment
from experiments.validation import validate_experiments

logger = logging.getLogger(__name__)

_SUFFIXES = (".yaml", ".yml")


def describe_validation_error(error: ValidationError) -> str:
    """Pydantic's errors as ``field.path: message`` clauses joined by ``; ``."""
    clauses = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        clauses.append(f"{where}: {message}" if where else message)
    return "; ".join(clauses)


def parse_experiment(data: Any, source: str | Path = "<definition>") -> Experiment:
    """Validate one mapping as an ``Experiment``.

    Raises:
        DataFormatError: naming ``source``, the field and what was wrong.
    """
    if not isinstance(data, dict):
        raise DataFormatError(source, f"a definition must be a mapping of fields, got {type(data).__name__}")
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        key = data.get("key", "?")
        raise DataFormatError(source, f"experiment {key!r}: {describe_validation_error(exc)}") from None


def read_file(path: Path) -> list[Experiment]:
    """The definitions in one YAML file, each checked on its own."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise DataFormatError(path, f"not valid YAML: {exc.problem}", line=line) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"cannot read the file ({exc})") from None
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [parse_experiment(item, path) for item in items]


def definition_files(path: Path) -> list[Path]:
    """The YAML files that make up ``path`` (itself, or the folder's files in name order)."""
    if not path.exists():
        raise NotFoundError(f"no experiment definitions at {path}; give a YAML file or a folder of them")
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and not p.name.startswith("."))
    return [path]


def load_experiments(path: Path) -> list[Experiment]:
    """Load and validate every definition under ``path`` (a folder or one file).

    Raises:
        NotFoundError: ``path`` does not exist.
        DataFormatError: a file is not valid YAML or a definition is invalid.
        ConflictError / InvalidInputError: the definitions cannot run together.
    """
    experiments: list[Experiment] = []
    for file in definition_files(Path(path)):
        experiments.extend(read_file(file))
    validate_experiments(experiments)
    logger.debug("loaded %d experiment definition(s) from %s", len(experiments), path)
    return experiments
