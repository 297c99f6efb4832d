"""A folder of definitions that the API (and the CLI) can read and change.

``put`` validates the new definition against every other one before writing,
so the folder always loads; each write replaces one YAML file atomically
(temp file + ``os.replace``) under an exclusive lock, so concurrent writers
never interleave and a crash leaves the previous file intact.
"""

from __future__ import annotations

import builtins
import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from core.errors import NotFoundError
from experiments.loader import definition_files, read_file
from experiments.spec import Experiment, Status
from experiments.validation import validate_experiments

logger = logging.getLogger(__name__)

_LOCK = ".experiments.lock"


def _to_yaml_data(experiment: Experiment) -> dict[str, Any]:
    return experiment.model_dump(mode="json", exclude_none=True)


class ExperimentStore:
    """Definitions kept as YAML files in ``directory`` (one file per new definition)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _files(self) -> dict[Path, list[Experiment]]:
        if not self.directory.exists():
            return {}
        return {path: read_file(path) for path in definition_files(self.directory)}

    def list(self) -> list[Experiment]:
        """Every definition, validated together, in key order."""
        experiments = [e for members in self._files().values() for e in members]
        validate_experiments(experiments)
        return sorted(experiments, key=lambda e: e.key)

    def get(self, key: str) -> Experiment:
        """The definition with ``key``.

        Raises:
            NotFoundError: no definition has that key.
        """
        for experiment in self.list():
            if experiment.key == key:
                return experiment
        raise NotFoundError(f"no experiment {key!r} in {self.directory}; `marquee experiments list` shows the keys")

    def put(self, experiment: Experiment) -> Experiment:
        """Create or replace a definition after checking it against all the others.

        Raises:
            ConflictError: it overlaps a running experiment of its layer.
            InvalidInputError: it makes the set inconsistent (layer unit or salt).
        """
        with self._locked():
            files = self._files()
            others = [e for members in files.values() for e in members if e.key != experiment.key]
            validate_experiments([*others, experiment])
            target = next((p for p, members in files.items() if any(e.key == experiment.key for e in members)), None)
            if target is None:
                target = self.directory / f"{experiment.key}.yaml"
                members = [experiment]
            else:
                members = [experiment if e.key == experiment.key else e for e in files[target]]
            self._write(target, members)
        logger.info("experiment store: saved %s (%s) to %s", experiment.key, experiment.status, target)
        return experiment

    def set_status(self, key: str, status: Status | str) -> Experiment:
        """Move a definition to ``draft``, ``running`` or ``stopped`` (validated like ``put``)."""
        current = self.get(key)
        updated = Experiment.model_validate({**current.model_dump(), "status": Status(status)})
        return self.put(updated)

    def _write(self, path: Path, members: builtins.list[Experiment]) -> None:
        data: Any = _to_yaml_data(members[0]) if len(members) == 1 else [_to_yaml_data(e) for e in members]
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / _LOCK, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
