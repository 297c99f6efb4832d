"""Look at a registered version from the command line: load its bundle, recommend for one profile.

A quick check for data scientists ("what does the champion propose for this
profile?"); the full ranked and filtered list is the model server's job.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.errors import NotFoundError
from core.lake import Lake
from core.settings import Settings
from models.base import Recommendation
from models.bundle import ModelBundle
from training.data import load_events, require_history
from training.protocol import interactions_from_events
from training.registry import alias_version
from training.tracking import Tracker

logger = logging.getLogger(__name__)


def load_registered_bundle(settings: Settings, alias: str = "champion") -> tuple[str, ModelBundle]:
    """The version holding ``alias`` and its bundle, downloaded from the registry.

    Raises:
        NotFoundError: no version holds the alias yet.
    """
    import mlflow.artifacts

    tracker = Tracker(settings)
    version = alias_version(tracker, settings.registered_model, alias)
    if version is None:
        raise NotFoundError(f"no {settings.registered_model} version is {alias} yet; run `marquee train` first")
    # The version's own download URI: no global registry URI needed for ``models:/`` resolution.
    uri = tracker.client.get_model_version_download_uri(settings.registered_model, str(version.version))
    path = mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=settings.mlflow_uri)
    return str(version.version), ModelBundle.load(Path(path))


def recommend_for_profile(
    settings: Settings, profile_id: str, *, k: int = 10, alias: str = "champion"
) -> tuple[str, str, Recommendation]:
    """(version, candidate role, top ``k``) from the version's primary candidate, given the profile's history.

    Raises:
        NotFoundError: no such version, or the profile has no watch history in the lake.
    """
    interactions = interactions_from_events(load_events(Lake.from_settings(settings)))
    history = require_history(interactions, profile_id)
    version, bundle = load_registered_bundle(settings, alias)
    role = str(bundle.metadata.get("primary_candidate") or next(iter(bundle.candidates)))
    model = bundle.candidates[role]
    rec = model.recommend(profile_id, k, history=history["item_id"].tolist())
    return version, role, rec
