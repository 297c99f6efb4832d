"""A model bundle: everything one registered model version needs to serve.

Training writes a bundle folder and logs it to MLflow; serving downloads the
registered version and reads it back. The bundle is the whole contract between
the two (they never import each other):

    bundle.json                    {"format": 1, "candidates": {name: {"model": registry name, "path": ...}},
                                    "ranker": {...} | null, "metadata": {...}}
    candidates/<name>/...          each CandidateGenerator's own ``save`` output
    ranker/...                     the Ranker's ``save`` output, if any

``metadata`` carries the feature-service name, data window, dataset hash and
anything else serving needs to rebuild inputs exactly as training did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.base import CandidateGenerator, Ranker
from models.registry import model_class

BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = 1


@dataclass
class ModelBundle:
    """Candidate generators (by role name), an optional ranker, and metadata."""

    candidates: dict[str, CandidateGenerator]
    ranker: Ranker | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> Path:
        """Write the bundle under folder ``path``; returns ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {"format": BUNDLE_FORMAT, "candidates": {}, "ranker": None}
        for role, model in self.candidates.items():
            rel = f"candidates/{role}"
            model.save(path / rel)
            manifest["candidates"][role] = {"model": model.name, "path": rel}
        if self.ranker is not None:
            self.ranker.save(path / "ranker")
            manifest["ranker"] = {"model": self.ranker.name, "path": "ranker"}
        manifest["metadata"] = self.metadata
        (path / BUNDLE_FILE).write_text(json.dumps(manifest, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: Path) -> ModelBundle:
        """Read a bundle from ``path`` or from the first ``bundle.json`` below it."""
        manifest_path = path / BUNDLE_FILE
        if not manifest_path.exists():
            found = sorted(path.rglob(BUNDLE_FILE))
            if not found:
                raise FileNotFoundError(f"no {BUNDLE_FILE} under {path}")
            manifest_path = found[0]
        root = manifest_path.parent
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"{manifest_path}: bundle format {manifest.get('format')!r}, expected {BUNDLE_FORMAT}")
        candidates: dict[str, CandidateGenerator] = {}
        for role, entry in manifest["candidates"].items():
            generator = model_class(entry["model"])
            candidates[role] = generator.load(root / entry["path"])  # type: ignore[assignment]
        ranker: Ranker | None = None
        if manifest.get("ranker"):
            ranker_cls = model_class(manifest["ranker"]["model"])
            ranker = ranker_cls.load(root / manifest["ranker"]["path"])  # type: ignore[assignment]
        return cls(candidates=candidates, ranker=ranker, metadata=manifest.get("metadata", {}))
