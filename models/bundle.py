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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from models.base import CandidateGenerator, Ranker
from models.registry import model_class
from models.scoring import share_equal_matrices

BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = 1


class BundleMetadataError(ValueError):
    """A bundle's metadata does not match ``BundleMetadata`` (wrong type, or a newer version than this code)."""


@dataclass(frozen=True)
class BundleMetadata:
    """The metadata training writes and serving reads, typed and versioned; checked on save and on load.

    Every field is optional (a hand-made bundle may carry only some); a field that is present must
    have its type. Keys this version does not know are kept in ``extra`` (written back unchanged).
    ``metadata_version`` is written on save; a bundle from a newer version is refused on load with a clear
    error instead of being served half-understood.
    """

    VERSION: ClassVar[int] = 1

    metadata_version: int = VERSION
    feature_service: str | None = None
    ranker_columns: list[str] | None = None
    candidate_sources: list[str] | None = None
    candidate_k: int | None = None
    title_feature_key: str | None = None
    primary_candidate: str | None = None
    ranker_used: bool | None = None
    ranker_note: str | None = None
    served: str | None = None
    dataset_hash: str | None = None
    data_window: list[str] | None = None
    seed: int | None = None
    protocol: str | None = None
    params: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    refit_on_all_data: bool | None = None
    tuning: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _TYPES: ClassVar[dict[str, type | tuple[type, ...]]] = {
        "metadata_version": int,
        "feature_service": str,
        "ranker_columns": list,
        "candidate_sources": list,
        "candidate_k": int,
        "title_feature_key": str,
        "primary_candidate": str,
        "ranker_used": bool,
        "ranker_note": str,
        "served": str,
        "dataset_hash": str,
        "data_window": list,
        "seed": int,
        "protocol": str,
        "params": dict,
        "validation": dict,
        "refit_on_all_data": bool,
        "tuning": dict,
    }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BundleMetadata:
        """Check ``raw`` and build the typed object.

        Raises:
            BundleMetadataError: a known key with the wrong type, or a version newer than ``VERSION``.
        """
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known or value is None:
                continue
            expected = cls._TYPES[key]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise BundleMetadataError(
                    f"bundle metadata {key!r} must be {getattr(expected, '__name__', expected)}, "
                    f"got {type(value).__name__}"
                )
            values[key] = value
        version = values.get("metadata_version", cls.VERSION)
        if version > cls.VERSION:
            raise BundleMetadataError(
                f"bundle metadata version {version} is newer than this code understands ({cls.VERSION}); "
                "upgrade Marquee to serve it"
            )
        return cls(**values, extra={k: v for k, v in raw.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: known fields that are set, then ``extra``."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**{k: v for k, v in out.items() if v is not None}, **self.extra}


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
        manifest["metadata"] = BundleMetadata.from_dict(json.loads(json.dumps(self.metadata, default=str))).to_dict()
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
            candidates[role] = _load_part(role, entry["model"], root / entry["path"])  # type: ignore[assignment]
        ranker: Ranker | None = None
        if manifest.get("ranker"):
            ranker = _load_part("ranker", manifest["ranker"]["model"], root / manifest["ranker"]["path"])  # type: ignore[assignment]
        metadata = BundleMetadata.from_dict(manifest.get("metadata") or {}).to_dict()
        share_equal_matrices(candidates.values())  # item-kNN and seqknn: one copy of their equal neighbours
        return cls(candidates=candidates, ranker=ranker, metadata=metadata)

    @property
    def typed_metadata(self) -> BundleMetadata:
        """``metadata`` as the checked, typed object."""
        return BundleMetadata.from_dict(self.metadata)


def _load_part(role: str, model: str, path: Path) -> object:
    """Load one model of a bundle; a corrupted or missing artifact is an error that names it.

    The loaders' own errors (``BadZipFile``, a pickle or JSON error) do not say which
    file of which bundle failed; whoever serves or inspects the bundle needs that.
    """
    try:
        return model_class(model).load(path)
    except Exception as exc:
        raise ValueError(f"{path}: cannot load the {role} model ({model}): {type(exc).__name__}: {exc}") from exc
