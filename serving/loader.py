"""Load registered model versions from MLflow by alias, and follow the aliases as they move.

Hot reload: a background thread polls the registry; when an alias points at a
new version, it downloads and builds the new pipeline off the request path, then
swaps one reference. Requests read the reference once at their start, so the
ones in flight finish on the old pipeline and no request ever fails or waits.

Only a new model version builds a pipeline. The lake's profiles and watch events
are not read at all (every request carries its viewer), so a lake export costs
the model server nothing; the titles table is read when a version is loaded.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import NotFoundError, ServiceUnavailableError
from core.lake import Lake
from core.periodic import Periodic
from core.rules import MODEL_ALIASES
from core.settings import Settings
from models.bundle import ModelBundle
from serving.catalog import TitleCatalog, load_catalog
from serving.features import OnlineRankerFeatures
from serving.pipeline import RecommendationPipeline

logger = logging.getLogger(__name__)

ALIASES = MODEL_ALIASES


@dataclass(frozen=True)
class LoadedModel:
    """One alias resolved: which version it named and the pipeline that serves it."""

    alias: str
    version: str
    pipeline: RecommendationPipeline


class RegistryClient:
    """The two registry calls serving needs, bound to one tracking URI."""

    def __init__(self, tracking_uri: str, model_name: str) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def version_of(self, alias: str) -> str | None:
        """The version ``alias`` points at, or ``None`` when the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
                return None
            raise

    def download(self, version: str) -> Path:
        """A local folder with the version's artifacts (pinned by number, so a moving alias cannot race us)."""
        import mlflow.artifacts

        # Resolve through our own client: ``models:/`` URIs would use the process-global registry URI.
        uri = self._client.get_model_version_download_uri(self.model_name, version)
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=self.tracking_uri))


class ModelLoader:
    """Champion and challenger pipelines, kept in step with the registry aliases.

    Args:
        settings: where the registry and the lake are.
        poll_s: seconds between registry polls; 0 disables the background thread.
        n_candidates: candidates each generator proposes per request.
        use_online_features: read ranker features from the Feast online store (when it is set up).
        memo_s: how long a pipeline remembers a viewer context's candidates (``None``: its default).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        poll_s: float = 5.0,
        n_candidates: int = 100,
        use_online_features: bool = True,
        memo_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.poll_s = poll_s
        self.n_candidates = n_candidates
        self.registry = RegistryClient(settings.mlflow_uri, settings.registered_model)
        self.lake = Lake.from_settings(settings)
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()
        self._poller: Periodic | None = None
        self.last_error: str | None = None
        self.on_swap: Callable[[str, str], None] | None = None
        self.use_online_features = use_online_features
        self.memo_s = memo_s
        self.features: OnlineRankerFeatures | None = None

    # ----------------------------------------------------------------- reading

    @property
    def ready(self) -> bool:
        """True once the champion is loaded."""
        return "champion" in self._models

    def get(self, variant: str = "champion") -> LoadedModel:
        """The model serving ``variant``; a missing challenger is served by the champion."""
        models = self._models  # one read: the swap replaces the dict, never mutates it
        model = models.get(variant) or models.get("champion")
        if model is None:
            raise ServiceUnavailableError(
                f"no model loaded yet: alias 'champion' of {self.settings.registered_model!r} is not set or "
                "not loaded; run `marquee train` and try again"
            )
        return model

    def versions(self) -> dict[str, str]:
        """alias → loaded version."""
        return {alias: m.version for alias, m in self._models.items()}

    # ----------------------------------------------------------------- loading

    def refresh(self) -> bool:
        """Check every alias once and load the versions that moved; True when anything changed."""
        changed = False
        catalog: TitleCatalog | None = None
        for alias in ALIASES:
            try:
                version = self.registry.version_of(alias)
            except Exception as exc:
                self.last_error = f"registry unreachable: {exc}"
                logger.warning("cannot read alias %s from the registry: %s", alias, exc)
                continue
            current = self._models.get(alias)
            if version is None:
                if current is not None and alias != "champion":
                    self._swap(alias, None)
                    changed = True
                continue
            if current is not None and current.version == version:
                continue
            twin = next((m for m in self._models.values() if m.version == version), None)
            if twin is not None:
                # Training usually points both aliases at a new version: load it once.
                self._swap(alias, LoadedModel(alias, version, twin.pipeline))
                changed = True
                continue
            try:
                if catalog is None:
                    catalog = load_catalog(self.lake)
                    if self.features is None and self.use_online_features:
                        self.features = OnlineRankerFeatures.open(self.settings)
                # A version replacing a served one warms up before the swap; the first one serves at
                # once (a cold first request beats a 503 from a worker still warming) and warms after.
                model = self._build(alias, version, catalog, warm=current is not None)
            except Exception as exc:
                # Keep serving the old version: a broken new version must not take the service down.
                self.last_error = f"loading {alias} version {version} failed: {exc}"
                logger.exception("loading %s version %s failed; keeping the old one", alias, version)
                continue
            self._swap(alias, model)
            if current is None:
                model.pipeline.warm_up()
            changed = True
        return changed

    def _build(self, alias: str, version: str, catalog: TitleCatalog, *, warm: bool = True) -> LoadedModel:
        started = time.perf_counter()
        folder = self.registry.download(version)
        try:
            bundle = ModelBundle.load(folder)
        except FileNotFoundError as exc:
            raise NotFoundError(f"model version {version} has no bundle.json in its artifacts ({exc})") from exc
        _limit_torch_threads()
        pipeline = self._pipeline(bundle, version, catalog, warm=warm)
        logger.info("loaded %s = version %s in %.2fs", alias, version, time.perf_counter() - started)
        return LoadedModel(alias, version, pipeline)

    def _pipeline(
        self, bundle: ModelBundle, version: str, catalog: TitleCatalog, *, warm: bool = True
    ) -> RecommendationPipeline:
        pipeline = RecommendationPipeline(
            bundle,
            catalog,
            version=version,
            n_candidates=self.n_candidates,
            features=self.features,
            memo_s=self.memo_s,
        )
        if warm:
            pipeline.warm_up()  # before the swap: requests keep the old pipeline until this one is warm
        return pipeline

    def _swap(self, alias: str, model: LoadedModel | None) -> None:
        with self._lock:
            models = dict(self._models)
            if model is None:
                models.pop(alias, None)
            else:
                models[alias] = model
            self._models = models
        if self.on_swap is not None:
            self.on_swap(alias, model.version if model else "")

    # ----------------------------------------------------------------- polling

    def start(self, *, background: bool = False) -> None:
        """Load what the aliases name now, then follow them in a daemon thread.

        With ``background=True`` even the first load happens in the thread, so the
        server answers ``/readyz`` (503, not ready) while a large model loads.
        """
        if not background:
            self.refresh()
        if (self.poll_s > 0 or background) and self._poller is None:
            # ``core.periodic`` logs a failed poll and polls again; a background start loads first.
            self._poller = Periodic(
                self.refresh, self.poll_s, name="marquee-model-poller", first=self.refresh if background else None
            )
            self._poller.start()

    def stop(self) -> None:
        """Stop polling (used at service shutdown and by tests)."""
        if self._poller is not None:
            self._poller.stop(timeout_s=10)
            self._poller = None
        if self.features is not None:
            self.features.close()


def _limit_torch_threads() -> None:
    """One intra-op thread for torch rankers (``MARQUEE_SERVING_TORCH_THREADS`` overrides).

    A ranker call is ~100 rows × ~40 columns: microseconds of arithmetic. With
    torch's default of one thread per core, every call pays a thread hand-off that
    measured 39 ms per request on a busy 2-core machine instead of ~0.1 ms.
    """
    if "torch" not in sys.modules:
        return
    import torch

    threads = int(os.environ.get("MARQUEE_SERVING_TORCH_THREADS", "1"))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
