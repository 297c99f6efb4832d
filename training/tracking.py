"""MLflow tracking: one parent run per training pipeline, one nested run per model.

Layout in the MLflow UI (experiment ``marquee-training``)::

    train <models> seed=<n>                 parent run: data params (dataset hash, window,
    │                                       sizes), pipeline params, the validation metrics
    │                                       of every stage, stage timings, the bundle artifact
    ├── candidate:<name>                    one per candidate model: its params, fit time,
    │                                       validation metrics alone
    └── ranker:neural-ranker                ranker params, loss per epoch, validation metrics
                                            of the ranked list, rows/queries trained on

Every run carries the tags ``marquee.dataset_hash``, ``marquee.feature_service``
and ``marquee.seed``, so ``mlflow.search_runs`` can compare like with like.

The client is used with explicit run ids (no fluent global state), so tests and
several pipelines in one process never step on each other's active run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.settings import Settings

logger = logging.getLogger(__name__)

EXPERIMENT = "marquee-training"
BUNDLE_ARTIFACT = "bundle"
TAG_PREFIX = "marquee."
_BAD_CHARS = re.compile(r"[^\w.\- /:]")


def metric_key(name: str, prefix: str = "") -> str:
    """An MLflow-safe metric or param name: ``ndcg@10`` → ``ndcg_at_10`` (MLflow refuses ``@``)."""
    key = name.replace("@", "_at_")
    key = _BAD_CHARS.sub("_", key)
    return f"{prefix}{key}"


class Tracker:
    """Thin wrapper over ``MlflowClient`` bound to one tracking URI and experiment."""

    def __init__(self, settings: Settings, experiment: str = EXPERIMENT) -> None:
        from mlflow import MlflowClient

        self.settings = settings
        self.tracking_uri = settings.mlflow_uri
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            artifact_root = settings.mlflow_artifact_root if not settings.mlflow_tracking_uri else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_root)
            logger.info("created MLflow experiment %s (%s)", experiment, self.experiment_id)
        else:
            self.experiment_id = found.experiment_id
        self.experiment = experiment

    @contextmanager
    def run(self, name: str, *, parent: str | None = None, tags: Mapping[str, str] | None = None) -> Iterator[str]:
        """Start a run (nested under ``parent`` when given), yield its id, end it FINISHED or FAILED."""
        all_tags = {f"{TAG_PREFIX}{k}" if "." not in k else k: str(v) for k, v in (tags or {}).items()}
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        run_id = run.info.run_id
        try:
            yield run_id
        except BaseException:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        self.client.set_terminated(run_id, status="FINISHED")

    def log_params(self, run_id: str, params: Mapping[str, Any], prefix: str = "") -> None:
        """Log params in one batch; values are stringified (MLflow params are strings)."""
        from mlflow.entities import Param

        batch = [Param(metric_key(k, prefix), str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(batch), 100):
            self.client.log_batch(run_id, params=batch[start : start + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], prefix: str = "", step: int = 0) -> None:
        """Log metrics in one batch at ``step``; non-finite values are skipped with a warning."""
        import math
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = []
        for k, v in metrics.items():
            if v is None or not math.isfinite(float(v)):
                logger.warning("not logging metric %s: value %r is not finite", k, v)
                continue
            batch.append(Metric(metric_key(k, prefix), float(v), now, step))
        for start in range(0, len(batch), 500):
            self.client.log_batch(run_id, metrics=batch[start : start + 500])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set ``marquee.``-prefixed tags (keys with a dot are kept as they are)."""
        for k, v in tags.items():
            self.client.set_tag(run_id, f"{TAG_PREFIX}{k}" if "." not in k else k, str(v))

    def log_artifacts(self, run_id: str, local_dir: Path, artifact_path: str) -> str:
        """Upload folder ``local_dir`` under ``artifact_path``; returns the artifact URI of that folder."""
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)
        return f"{self.client.get_run(run_id).info.artifact_uri}/{artifact_path}"

    def log_dict(self, run_id: str, data: Mapping[str, Any], artifact_file: str) -> None:
        """Write a JSON artifact (e.g. the metrics table) next to the run."""
        self.client.log_dict(run_id, dict(data), artifact_file)
