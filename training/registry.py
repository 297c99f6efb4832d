"""The MLflow Model Registry: register a trained bundle, move the ``challenger`` and ``champion`` aliases.

What serving reads — the exact layout
=====================================

Registered model ``settings.registered_model`` (default ``marquee-recommender``).
Each version is created with ``MlflowClient.create_model_version(name,
source=<run artifact URI>/bundle, run_id=<pipeline run id>)``; its source folder
is the ``models.bundle.ModelBundle`` folder itself, so::

    path = mlflow.artifacts.download_artifacts("models:/marquee-recommender@champion")
    bundle = ModelBundle.load(Path(path))

gives serving everything. The downloaded folder holds::

    bundle.json                  {"format": 1,
                                  "candidates": {"<role>": {"model": "<registry name>", "path": "candidates/<role>"}},
                                  "ranker": {"model": "neural-ranker", "path": "ranker"} | null,
                                  "metadata": {...see below...}}
    candidates/<role>/...        each candidate model's own save() output, id mapping included
    ranker/ranker.json           ranker hyper-parameters, feature names (= ranker_columns), normalisation stats
    ranker/weights.npz           ranker weights (numpy arrays, no pickle)

``metadata`` keys: ``feature_service`` (Feast feature service the ranker's features
come from), ``ranker_columns`` (ordered input columns, see ``features.ranking_frame``),
``candidate_sources`` (source order of the candidate columns), ``candidate_k`` (how
many titles each source proposes), ``title_feature_key`` (an episode candidate's title
features and genres are its series'), ``primary_candidate`` (the role to serve alone
when the ranker is absent or unusable), ``dataset_hash``, ``data_window``
(``[start, end]`` ISO UTC), ``seed``, ``params`` (per model), ``validation``
(metrics per stage), ``ranker_used`` (bool) and ``ranker_note``.

Model version tags: ``validation_metric`` (e.g. ``ndcg@10``), ``validation_value``,
``dataset_hash``, ``feature_service``, ``ranker_used``. Aliases: a new version
always gets ``challenger``; it also gets ``champion`` when ``training.promotion``
says it beats the current champion (or there is none). The champion's value is
read from its version tag, so the rule needs no run lookup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInputError, NotFoundError
from training.promotion import PROMOTION_METRIC, PromotionDecision, decide
from training.tracking import BUNDLE_ARTIFACT, Tracker

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
METRIC_TAG = "validation_metric"
VALUE_TAG = "validation_value"


@dataclass(frozen=True)
class Registration:
    """The version just registered and what the promotion rule decided."""

    name: str
    version: str
    run_id: str
    decision: PromotionDecision
    promoted: bool


def _client(tracker: Tracker) -> Any:
    return tracker.client


def register_bundle(
    tracker: Tracker,
    name: str,
    run_id: str,
    *,
    metric_value: float,
    metric: str = PROMOTION_METRIC,
    tags: dict[str, str] | None = None,
    description: str = "",
    artifact: str = BUNDLE_ARTIFACT,
) -> str:
    """Create a model version of ``name`` from the ``artifact`` folder of run ``run_id``; returns the version."""
    from mlflow.exceptions import MlflowException

    client = _client(tracker)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="Marquee recommender bundles (candidates + ranker); see training.registry."
        )
    source = f"{client.get_run(run_id).info.artifact_uri}/{artifact}"
    version_tags = {METRIC_TAG: metric, VALUE_TAG: repr(float(metric_value)), **(tags or {})}
    mv = client.create_model_version(name, source=source, run_id=run_id, tags=version_tags, description=description)
    logger.info("registered %s version %s from run %s", name, mv.version, run_id)
    return str(mv.version)


def alias_version(tracker: Tracker, name: str, alias: str) -> Any | None:
    """The model version that holds ``alias``, or ``None``."""
    from mlflow.exceptions import MlflowException

    try:
        return _client(tracker).get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def version_value(version: Any, metric: str = PROMOTION_METRIC) -> float | None:
    """The validation value tagged on a model version, if it was measured with ``metric``."""
    tags = dict(version.tags or {})
    if tags.get(METRIC_TAG) != metric or VALUE_TAG not in tags:
        return None
    try:
        return float(tags[VALUE_TAG])
    except ValueError:
        return None


def register_and_promote(
    tracker: Tracker,
    name: str,
    run_id: str,
    *,
    metric_value: float,
    metric: str = PROMOTION_METRIC,
    promote: bool = True,
    min_improvement: float = 0.0,
    tags: dict[str, str] | None = None,
) -> Registration:
    """Register the run's bundle as ``challenger`` and apply the promotion rule.

    Args:
        promote: when False the new version only becomes ``challenger`` (the decision is
            still computed and reported, so one can promote it by hand later).
    """
    client = _client(tracker)
    version = register_bundle(tracker, name, run_id, metric_value=metric_value, metric=metric, tags=tags)
    client.set_registered_model_alias(name, CHALLENGER, version)
    current = alias_version(tracker, name, CHAMPION)
    decision = decide(
        metric_value,
        version_value(current, metric) if current is not None else None,
        metric=metric,
        min_improvement=min_improvement,
    )
    promoted = promote and decision.promote
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
        logger.info("%s version %s is the new champion: %s", name, version, decision.reason)
    else:
        why = decision.reason if promote else "promotion disabled (--no-promote)"
        logger.info("%s version %s stays challenger: %s", name, version, why)
    client.set_model_version_tag(name, version, "promotion", decision.reason)
    return Registration(name=name, version=version, run_id=run_id, decision=decision, promoted=promoted)


def register_runner_up(
    tracker: Tracker,
    winner: Registration,
    *,
    artifact: str,
    metric_value: float,
    metric: str = PROMOTION_METRIC,
    tags: dict[str, str] | None = None,
) -> str | None:
    """Register this run's second-best bundle as ``challenger`` when the winner became champion.

    Then the two aliases name two different models, so an experiment between ``champion`` and
    ``challenger`` compares something. When the winner was not promoted it keeps ``challenger``
    (it already differs from the older champion) and nothing more is registered.

    Returns:
        The runner-up's version, or None when it was not registered.
    """
    if not winner.promoted:
        return None
    version = register_bundle(
        tracker, winner.name, winner.run_id, metric_value=metric_value, metric=metric, tags=tags, artifact=artifact
    )
    client = _client(tracker)
    client.set_registered_model_alias(winner.name, CHALLENGER, version)
    client.set_model_version_tag(
        winner.name, version, "promotion", f"runner-up of run {winner.run_id} (champion is version {winner.version})"
    )
    logger.info("%s version %s (runner-up) is the challenger", winner.name, version)
    return version


def promote_version(tracker: Tracker, name: str, version: str) -> None:
    """Escape hatch: make ``version`` the champion regardless of the rule (e.g. a rollback).

    Raises:
        NotFoundError: the registered model or the version does not exist; lists the versions.
    """
    from mlflow.exceptions import MlflowException

    client = _client(tracker)
    try:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    except MlflowException:
        versions = []
    if not versions:
        raise NotFoundError(f"no registered model {name!r}; train one first with `marquee train`")
    if not version.isdigit():
        raise InvalidInputError(f"VERSION must be a version number such as {versions[-1]}, got {version!r}")
    if int(version) not in versions:
        raise NotFoundError(f"{name} has no version {version}; versions: {', '.join(map(str, versions))}")
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "promotion", "promoted by hand")
    logger.info("%s version %s promoted to champion by hand", name, version)


def list_versions(tracker: Tracker, name: str) -> list[dict[str, Any]]:
    """Versions of ``name`` (newest first) with their aliases and validation values, for the CLI."""
    from mlflow.exceptions import MlflowException

    client = _client(tracker)
    try:
        model = client.get_registered_model(name)
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = dict(v.tags or {})
        rows.append(
            {
                "version": str(v.version),
                "aliases": sorted(aliases.get(str(v.version), [])),
                "metric": tags.get(METRIC_TAG, ""),
                "value": tags.get(VALUE_TAG, ""),
                "run_id": v.run_id,
                "dataset_hash": tags.get("dataset_hash", ""),
            }
        )
    return rows
