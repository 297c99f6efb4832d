"""The training pipeline as plain named steps (Metaflow style), each testable alone.

    load_training_data(lake)            events → interactions, dataset hash, data window
    split_validation(data)              the protocol's validation split (last 20% per profile)
    fit_candidates(...)                 every candidate model on the earlier 80%
    list_candidates(...)                top-k per model for each validation profile
    build_ranker_data(...)              candidate union + point-in-time features + labels
    fit_ranker(...)                     the neural ranker on part of the validation profiles
    evaluate(...)                       ndcg@10 etc. of each candidate alone and of the ranked
                                        union, on the held-out validation profiles
    refit_candidates(...)               candidates again on all interactions (what is served)
    save_bundle / log / register        MLflow runs, the bundle artifact, challenger/champion

``run_training`` runs them in order and returns a ``TrainingResult``. The ranker
is shipped only when it beats the best single candidate on the held-out
validation profiles; otherwise the bundle says so (``ranker_used: false`` and
``ranker_note``) and serving ranks by the best candidate alone.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.errors import InvalidInputError
from core.lake import Lake
from core.settings import Settings
from features.pipelines import PipelineOptions, compute_feature_tables
from features.spark.session import session_for
from models.bundle import ModelBundle
from models.ranker import NeuralRanker
from models.ranker_distributed import MAX_WORKERS, fit_distributed
from training.candidates import (
    FittedCandidate,
    candidate_lists,
    check_models,
    evaluate_lists,
    fit_candidates,
    item_feature_tokens,
    ranked_by_source,
    tune_candidates,
)
from training.data import TrainingData, load_training_data
from training.defaults import DEFAULT_MODELS
from training.evaluation import champion_rule
from training.promotion import PROMOTION_METRIC
from training.protocol import PROTOCOL, Split, validation_split
from training.ranker_data import RankerData, build_ranker_data
from training.registry import Registration, register_and_promote, register_runner_up
from training.tracking import BUNDLE_ARTIFACT, Tracker

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The Feast feature service the ranker's features come from (see features/feast_repo).
FEATURE_SERVICE = "ranker_v1"
RANKED = "ranked"
#: Run artifact holding the runner-up's bundle (same models, another list served).
RUNNER_UP_ARTIFACT = "bundle-runner-up"


@dataclass
class TrainingConfig:
    """What to train and how; every field is logged as an MLflow param.

    Attributes:
        models: candidate generators by registry name (their roles in the bundle).
        params: per-model constructor params, e.g. ``{"als": {"factors": 64}}``.
        seed: seeds the models, the profile sampling and the ranker.
        trials: at most this many validation fits per model to tune its params (0: defaults).
        candidate_k: titles each candidate model proposes per profile.
        use_ranker: train the neural ranker over the candidate union.
        ranker_params: ``NeuralRanker`` constructor params.
        max_profiles: at most this many validation profiles (seeded sample) get candidate lists,
            ranker rows and metrics: bounds the cost on large data, all of them on small data.
        ranker_profiles: at most this many validation profiles train the ranker (speed bound).
        ranker_workers: processes that train the ranker together (torch DDP over gloo,
            ``models.ranker_distributed``); 1 trains it in this process.
        holdout_fraction: share of validation profiles kept out of ranker training, on
            which candidates and ranked lists are compared (and promotion is decided).
        refit: refit the candidates on all interactions for the served bundle.
        promote: apply the promotion rule (else the version only becomes challenger).
        register: register the bundle in the Model Registry at all.
        feature_service: recorded in the bundle for serving's online feature reads.
        progress: tqdm progress bars.
    """

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 42
    trials: int = 0
    candidate_k: int = 50
    use_ranker: bool = True
    ranker_params: dict[str, Any] = field(default_factory=dict)
    max_profiles: int = 8000
    ranker_profiles: int = 5000
    ranker_workers: int = 1
    holdout_fraction: float = 0.25
    refit: bool = True
    promote: bool = True
    register: bool = True
    feature_service: str = FEATURE_SERVICE
    progress: bool = False

    def check(self) -> None:
        """Validate the config; clear errors name the field and the accepted range."""
        self.models = check_models(self.models)
        if not 1 <= self.candidate_k <= 1000:
            raise InvalidInputError(f"candidate_k must be between 1 and 1000, got {self.candidate_k}")
        if not 0.05 <= self.holdout_fraction <= 0.9:
            raise InvalidInputError(f"holdout_fraction must be between 0.05 and 0.9, got {self.holdout_fraction}")
        if not 0 <= self.trials <= 200:
            raise InvalidInputError(f"trials must be between 0 and 200, got {self.trials}")
        if self.max_profiles < 20:
            raise InvalidInputError(f"max_profiles must be at least 20, got {self.max_profiles}")
        if self.ranker_profiles < 10:
            raise InvalidInputError(f"ranker_profiles must be at least 10, got {self.ranker_profiles}")
        if not 1 <= self.ranker_workers <= MAX_WORKERS:
            raise InvalidInputError(f"ranker_workers must be between 1 and {MAX_WORKERS}, got {self.ranker_workers}")
        unknown = sorted(set(self.params) - set(self.models))
        if unknown:
            raise InvalidInputError(f"params given for models not being trained: {unknown}")


@dataclass
class TrainingResult:
    """What one pipeline run produced."""

    run_id: str
    metrics: dict[str, dict[str, float]]
    served: str
    served_value: float
    ranker_used: bool
    ranker_note: str
    timings: dict[str, float]
    wall_seconds: float
    registration: Registration | None
    bundle_dir: Path
    data: dict[str, Any]
    #: The second-best list by the same rule, registered as ``challenger`` when the winner became champion.
    runner_up: str | None = None
    challenger_version: str | None = None


class Stopwatch:
    """Wall time per named stage, for MLflow and ``bench/bench_training.py``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            logger.info("stage %s: %.1f s", name, self.seconds[name])


# ----------------------------------------------------------------------------- steps
def split_validation(data: TrainingData, spark: SparkSession | None = None) -> Split:
    """The protocol's validation split of all interactions: last 20% of each profile held out (in Spark when given)."""
    if spark is not None:
        from training import spark_frames

        frame = spark.createDataFrame(data.interactions)
        return spark_frames.temporal_user_split(frame, drop_short_users=False)
    return validation_split(data.interactions)


def sample_profiles(users: list[str], limit: int, seed: int) -> list[str]:
    """At most ``limit`` of ``users`` (seeded, sorted), all of them when there are fewer."""
    if len(users) <= limit:
        return sorted(users)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.asarray(sorted(users), dtype=object), size=limit, replace=False).tolist())


def holdout_users(users: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded share of validation profiles kept out of ranker training (at least one)."""
    rng = np.random.default_rng(seed)
    n = max(1, round(len(users) * fraction))
    return set(rng.permutation(np.asarray(sorted(users), dtype=object))[:n].tolist())


def cutoff_times(train: pd.DataFrame) -> dict[str, int]:
    """user_id → time of the profile's last training interaction (the features' as-of time)."""
    return {str(k): int(v) for k, v in train.groupby("user_id", sort=False)["ts"].max().items()}


def feature_tables(
    lake: Lake, progress: bool = False, spark: SparkSession | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The feature store's as-of tables computed from the lake (the rows Feast's offline store holds).

    Args:
        spark: compute them with this Spark session (``MARQUEE_ENGINE=spark``); None: pandas.

    Returns:
        The tables by name, and episode id → series id (title features are per catalog title).
    """
    episodes = lake.read_or_empty("episodes", ["episode_id", "series_id"])
    if spark is not None:
        from features.spark.build import compute_feature_tables_spark
        from features.spark.lake import read_table

        tables = dict(
            compute_feature_tables_spark(
                read_table(spark, lake, "watch_events", ["profile_id", "title_id", "ts", "position_s", "duration_s"]),
                read_table(spark, lake, "titles"),
                read_table(spark, lake, "episodes", ["episode_id", "series_id"]) if len(episodes) else None,
                None,
                PipelineOptions(),
            ).tables
        )
    else:
        events = lake.read("watch_events", ["profile_id", "title_id", "ts", "position_s", "duration_s"])
        titles = lake.read_or_empty("titles")
        tables = dict(compute_feature_tables(events, titles, episodes, progress=progress).tables)
    catalog_title = dict(zip(episodes["episode_id"].astype(str), episodes["series_id"].astype(str), strict=True))
    return tables, catalog_title


def fit_ranker(data: RankerData, rows: np.ndarray, config: TrainingConfig) -> NeuralRanker:
    """Fit the ranker on the masked rows (training profiles with at least one positive in their union).

    With ``config.ranker_workers`` above 1 the ranker is trained by that many processes
    (DDP over gloo); the one-process fit is the default.
    """
    params = {"seed": config.seed, **config.ranker_params}
    ranker = NeuralRanker(**params)
    bar = tqdm(total=ranker.epochs, desc="ranker epochs", unit="epoch", disable=not config.progress)

    def on_epoch(epoch: int, loss: float) -> None:
        bar.set_postfix(loss=f"{loss:.4f}")
        bar.update()

    if config.ranker_workers > 1:
        ranker = fit_distributed(
            ranker,
            data.matrix(rows),
            data.groups(rows),
            data.labels(rows),
            data.columns,
            workers=config.ranker_workers,
            on_epoch=on_epoch,
        ).ranker
    else:
        ranker.fit(data.matrix(rows), data.groups(rows), data.labels(rows), data.columns, on_epoch=on_epoch)
    bar.close()
    return ranker


def ranked_lists(data: RankerData, rows: np.ndarray, ranker: NeuralRanker) -> dict[str, list[str]]:
    """user_id → the candidate union ordered by ranker score (ties by title id), for the masked rows."""
    frame = data.frame.loc[rows, ["user_id", "title_id"]].copy()
    frame["score"] = ranker.score(data.matrix(rows))
    frame = frame.sort_values(["user_id", "score", "title_id"], ascending=[True, False, True], kind="mergesort")
    return {str(u): g.tolist() for u, g in frame.groupby("user_id", sort=False)["title_id"]}


def evaluate(
    per_source: Mapping[str, Mapping[str, list[str]]],
    relevant: Mapping[str, set[str]],
    n_items: int,
    ranked: Mapping[str, list[str]] | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics of each candidate source alone, and of the ranked union when given, on ``relevant``'s users."""
    out = {source: evaluate_lists(lists, relevant, n_items) for source, lists in per_source.items()}
    if ranked is not None:
        out[RANKED] = evaluate_lists(ranked, relevant, n_items)
    return out


def _eligible(
    holdout_metrics: Mapping[str, Mapping[str, float]], sources: list[str], ranker_trained: bool
) -> dict[str, Mapping[str, float]]:
    """The lists that may be served: every candidate source, the ranked union when a ranker was trained."""
    names = [*sources, *([RANKED] if ranker_trained else [])]
    return {n: holdout_metrics[n] for n in names if n in holdout_metrics}


def choose_served(
    holdout_metrics: Mapping[str, Mapping[str, float]], sources: list[str], ranker_trained: bool
) -> tuple[str, bool, str]:
    """Which list to serve, by ``marquee evaluate``'s rule: the best non-baseline on the holdout (``champion_rule``).

    The ranked union competes like any candidate; baselines (popularity, EASE) are served only
    when nothing else was trained. Returns the list's name, whether the ranker is used, and why.
    """
    eligible = _eligible(holdout_metrics, sources, ranker_trained)
    best = champion_rule(eligible)["best"] or max(
        eligible, key=lambda s: (eligible[s][PROMOTION_METRIC], -list(eligible).index(s))
    )
    best_value = eligible[best][PROMOTION_METRIC]
    if not ranker_trained:
        return best, False, f"no ranker trained; serving {best} alone ({PROMOTION_METRIC} {best_value:.4f})"
    if best == RANKED:
        others = {k: v for k, v in eligible.items() if k != RANKED}
        runner = champion_rule(others)["best"] or next(iter(others), "")
        runner_value = others[runner][PROMOTION_METRIC] if runner else float("nan")
        note = f"ranker {PROMOTION_METRIC} {best_value:.4f} beats the best candidate {runner} ({runner_value:.4f})"
        return RANKED, True, note
    ranked_value = holdout_metrics[RANKED][PROMOTION_METRIC]
    note = (
        f"ranker {PROMOTION_METRIC} {ranked_value:.4f} does not beat the best candidate {best} "
        f"({best_value:.4f}); the bundle keeps the ranker but serving uses {best} alone"
    )
    logger.warning(note)
    return best, False, note


def choose_challenger(
    holdout_metrics: Mapping[str, Mapping[str, float]], sources: list[str], ranker_trained: bool, served: str
) -> str | None:
    """The runner-up by the same rule: the best eligible list other than ``served`` (None when there is none).

    ``marquee train`` registers it as a second version so that ``ranker-challenger`` compares two
    different models (the ranked union against the best candidate alone, or two candidates).
    """
    eligible = {k: v for k, v in _eligible(holdout_metrics, sources, ranker_trained).items() if k != served}
    if not eligible:
        return None
    return champion_rule(eligible)["best"] or max(
        eligible, key=lambda s: (eligible[s][PROMOTION_METRIC], -list(eligible).index(s))
    )


# ------------------------------------------------------------------------- pipeline
def run_training(settings: Settings, config: TrainingConfig, tracker: Tracker | None = None) -> TrainingResult:
    """Train candidates (+ ranker), evaluate on validation, log everything to MLflow, register, promote."""
    config.check()
    started = time.perf_counter()
    watch = Stopwatch()
    lake = Lake.from_settings(settings)
    spark = session_for(settings, config.models)
    with watch.stage("load"):
        data = load_training_data(lake, spark)
    with watch.stage("split"):
        split = split_validation(data, spark)
        item_features = item_feature_tokens(data.titles, lake.read_or_empty("episodes", ["episode_id", "series_id"]))
    relevant_all = split.test_items()
    users = sample_profiles(sorted(relevant_all), config.max_profiles, config.seed)
    relevant_all = {u: relevant_all[u] for u in users}
    holdout = holdout_users(users, config.holdout_fraction, config.seed)
    relevant_holdout = {u: relevant_all[u] for u in users if u in holdout}
    n_items = int(split.train["item_id"].nunique())

    tuned: dict[str, Any] = {}
    if config.trials > 0:
        with watch.stage("tune"):
            tuned = tune_candidates(
                config.models, split, trials=config.trials, seed=config.seed, progress=config.progress
            )
        config.params = {n: {**r.params, **config.params.get(n, {})} for n, r in tuned.items()} | {
            n: p for n, p in config.params.items() if n not in tuned
        }
    # The served models (refit on all interactions) depend on nothing that follows, so they fit in a
    # background thread while the validation models, candidate lists and ranker run: implicit and
    # LightFM release the GIL, which nearly halves the wall time on two cores.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="refit")
    refit_job: Future[dict[str, FittedCandidate]] | None = None
    if config.refit:
        refit_job = background.submit(
            _timed,
            watch,
            "refit_candidates (background)",
            fit_candidates,
            config.models,
            data.interactions,
            params=config.params,
            seed=config.seed,
            item_features=item_features,
        )
    try:
        with watch.stage("fit_candidates"):
            fitted = fit_candidates(
                config.models,
                split.train,
                params=config.params,
                seed=config.seed,
                progress=config.progress,
                item_features=item_features,
            )
        with watch.stage("candidate_lists"):
            lists = candidate_lists(
                {n: f.model for n, f in fitted.items()}, users, config.candidate_k, progress=config.progress
            )
        per_source = ranked_by_source(lists)
        for source in config.models:
            per_source.setdefault(source, {})
        with watch.stage("evaluate"):
            validation = evaluate(per_source, relevant_all, n_items)

        ranker: NeuralRanker | None = None
        ranked: dict[str, list[str]] | None = None
        ranker_info: dict[str, Any] = {}
        if config.use_ranker:
            with watch.stage("features"):
                tables, catalog_title = feature_tables(lake, progress=config.progress, spark=spark)
            with watch.stage("ranker_data"):
                rdata = build_ranker_data(
                    lists, cutoff_times(split.train), relevant_all, config.models, tables, catalog_title, spark=spark
                )
            in_holdout = rdata.frame["user_id"].isin(holdout).to_numpy()
            train_rows = _ranker_training_rows(rdata, in_holdout, config)
            if train_rows.any():
                with watch.stage("fit_ranker"):
                    ranker = fit_ranker(rdata, train_rows, config)
                ranked = ranked_lists(rdata, in_holdout, ranker)
                ranker_info = {
                    "rows": int(train_rows.sum()),
                    "profiles": int(rdata.frame.loc[train_rows, "user_id"].nunique()),
                    "positives": int(rdata.frame.loc[train_rows, "label"].sum()),
                    "columns": len(rdata.columns),
                    "workers": config.ranker_workers,
                }
            else:
                logger.warning("no training profile has a watched-next title among its candidates; ranker skipped")
            ranker_columns = rdata.columns
        else:
            ranker_columns = []
        holdout_lists = {s: {u: v for u, v in lists_.items() if u in holdout} for s, lists_ in per_source.items()}
        with watch.stage("evaluate"):
            on_holdout = evaluate(holdout_lists, relevant_holdout, n_items, ranked)
        served, ranker_used, note = choose_served(on_holdout, config.models, ranker is not None)
        served_value = on_holdout[served][PROMOTION_METRIC]
        primary = served if served != RANKED else choose_served(on_holdout, config.models, False)[0]
        runner_up = choose_challenger(on_holdout, config.models, ranker is not None, served)

        if refit_job is not None:
            with watch.stage("wait_for_refit"):
                fitted = refit_job.result()
    finally:
        # On an error the background fit is abandoned rather than waited for.
        background.shutdown(wait=False, cancel_futures=True)
    metadata = {
        "feature_service": config.feature_service,
        "ranker_columns": ranker_columns if ranker is not None else [],
        "candidate_sources": list(config.models),
        "candidate_k": config.candidate_k,
        # Title features (and genre_match's title genres) of an episode are its series' (lake episodes table).
        "title_feature_key": "series_id for episodes, else title_id",
        "primary_candidate": primary,
        "ranker_used": ranker_used,
        "ranker_note": note,
        "dataset_hash": data.dataset_hash,
        "data_window": list(data.data_window),
        "seed": config.seed,
        "protocol": PROTOCOL,
        "params": {n: f.params for n, f in fitted.items()} | ({"ranker": ranker.params()} if ranker else {}),
        "validation": {"all_profiles": validation, "holdout_profiles": on_holdout},
        "served": served,
        "refit_on_all_data": config.refit,
        "tuning": {n: {"params": r.params, "ndcg@10": r.score, "trials": len(r.trials)} for n, r in tuned.items()},
    }
    bundle = ModelBundle(candidates={n: f.model for n, f in fitted.items()}, ranker=ranker, metadata=metadata)
    runner_bundle: ModelBundle | None = None
    if runner_up is not None:
        runner_meta = {
            **metadata,
            "served": runner_up,
            "ranker_used": runner_up == RANKED,
            "primary_candidate": primary if runner_up == RANKED else runner_up,
            "ranker_note": f"runner-up of this run ({runner_up}); the winner {served} is the champion candidate",
        }
        runner_bundle = ModelBundle(candidates=bundle.candidates, ranker=ranker, metadata=runner_meta)
    metrics = {f"validation/{k}": v for k, v in validation.items()} | {f"holdout/{k}": v for k, v in on_holdout.items()}
    tracker = tracker or Tracker(settings)
    with watch.stage("save_log_register"):
        # Scratch copy in the workspace (the logged artifact is what serving reads); replaced each run.
        bundle_dir = settings.workspace.models_dir / "last-bundle"
        if bundle_dir.exists():
            shutil.rmtree(bundle_dir)
        bundle.save(bundle_dir)
        runner_dir = settings.workspace.models_dir / "last-bundle-runner-up"
        if runner_dir.exists():
            shutil.rmtree(runner_dir)
        if runner_bundle is not None:
            runner_bundle.save(runner_dir)
        run_id, registration = _log_and_register(
            settings, tracker, config, data, fitted, ranker, ranker_info, metrics, watch, metadata, bundle_dir
        )
        challenger_version = None
        if registration is not None and runner_bundle is not None and runner_up is not None:
            tracker.log_artifacts(run_id, runner_dir, RUNNER_UP_ARTIFACT)
            challenger_version = register_runner_up(
                tracker,
                registration,
                artifact=RUNNER_UP_ARTIFACT,
                metric_value=on_holdout[runner_up][PROMOTION_METRIC],
                tags={
                    "dataset_hash": data.dataset_hash,
                    "feature_service": config.feature_service,
                    "ranker_used": str(runner_up == RANKED).lower(),
                    "served": runner_up,
                },
            )
    return TrainingResult(
        run_id=run_id,
        metrics=metrics,
        served=served,
        served_value=served_value,
        ranker_used=ranker_used,
        ranker_note=note,
        timings=dict(watch.seconds),
        wall_seconds=time.perf_counter() - started,
        registration=registration,
        bundle_dir=bundle_dir,
        data=data.describe(),
        runner_up=runner_up,
        challenger_version=challenger_version,
    )


def _timed(watch: Stopwatch, stage: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``func`` inside a stopwatch stage (for work submitted to a background thread)."""
    with watch.stage(stage):
        return func(*args, **kwargs)


def _ranker_training_rows(data: RankerData, in_holdout: np.ndarray, config: TrainingConfig) -> np.ndarray:
    """Rows of non-holdout profiles that have a positive, capped at ``ranker_profiles`` profiles (seeded)."""
    frame = data.frame
    has_positive = frame.groupby("user_id", sort=False)["label"].transform("max").to_numpy() > 0
    eligible = ~in_holdout & has_positive
    users = np.asarray(sorted(set(frame.loc[eligible, "user_id"])), dtype=object)
    if len(users) > config.ranker_profiles:
        rng = np.random.default_rng(config.seed + 1)
        users = rng.choice(users, size=config.ranker_profiles, replace=False)
    return eligible & frame["user_id"].isin(set(users.tolist())).to_numpy()


def _log_and_register(
    settings: Settings,
    tracker: Tracker,
    config: TrainingConfig,
    data: TrainingData,
    fitted: Mapping[str, FittedCandidate],
    ranker: NeuralRanker | None,
    ranker_info: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, float]],
    watch: Stopwatch,
    metadata: Mapping[str, Any],
    bundle_dir: Path,
) -> tuple[str, Registration | None]:
    """One parent run (data, config, all metrics, the bundle) and nested runs per model."""
    tags = {
        "dataset_hash": data.dataset_hash,
        "feature_service": config.feature_service,
        "seed": str(config.seed),
        "models": ",".join(config.models),
        "protocol": PROTOCOL,
    }
    run_name = f"train {'+'.join(config.models)}{'+ranker' if ranker else ''} seed={config.seed}"
    served = str(metadata["served"])
    with tracker.run(run_name, tags=tags) as run_id:
        tracker.log_params(run_id, data.describe(), prefix="data.")
        tracker.log_params(
            run_id,
            {
                "models": ",".join(config.models),
                "seed": config.seed,
                "trials": config.trials,
                "candidate_k": config.candidate_k,
                "use_ranker": config.use_ranker,
                "max_profiles": config.max_profiles,
                "ranker_profiles": config.ranker_profiles,
                "ranker_workers": config.ranker_workers,
                "holdout_fraction": config.holdout_fraction,
                "refit": config.refit,
                "feature_service": config.feature_service,
                "protocol": PROTOCOL,
                "served": served,
                "ranker_used": metadata["ranker_used"],
            },
        )
        for stage, values in metrics.items():
            tracker.log_metrics(run_id, values, prefix=stage.replace("/", ".") + ".")
        served_metrics = metrics[f"holdout/{served}"]
        tracker.log_metrics(run_id, served_metrics, prefix="served.")
        tracker.log_metrics(run_id, {f"time_{k.split(' ')[0]}_s": v for k, v in watch.seconds.items()})
        tracker.set_tags(run_id, {"ranker_note": metadata["ranker_note"], "served": served})
        for name, candidate in fitted.items():
            with tracker.run(f"candidate:{name}", parent=run_id, tags=tags) as child:
                tracker.log_params(child, candidate.params)
                tracker.log_metrics(child, {"fit_seconds": candidate.fit_seconds})
                tuning = metadata["tuning"].get(name)
                if tuning:
                    tracker.log_metrics(
                        child, {"best_ndcg@10": tuning["ndcg@10"], "trials": tuning["trials"]}, "tuning."
                    )
                tracker.log_metrics(child, metrics[f"validation/{name}"], prefix="validation.")
                tracker.log_metrics(child, metrics[f"holdout/{name}"], prefix="holdout.")
        if ranker is not None:
            with tracker.run(f"ranker:{ranker.name}", parent=run_id, tags=tags) as child:
                tracker.log_params(child, ranker.params() | dict(ranker_info))
                for epoch, loss in enumerate(ranker.history):
                    tracker.log_metrics(child, {"train_loss": loss}, step=epoch)
                tracker.log_metrics(child, metrics[f"holdout/{RANKED}"], prefix="holdout.")
                tracker.log_dict(child, {"columns": ranker.feature_names}, "ranker_columns.json")
        tracker.log_dict(run_id, {k: dict(v) for k, v in metrics.items()}, "metrics.json")
        tracker.log_artifacts(run_id, bundle_dir, BUNDLE_ARTIFACT)
    registration = None
    if config.register:
        registration = register_and_promote(
            tracker,
            settings.registered_model,
            run_id,
            metric_value=served_metrics[PROMOTION_METRIC],
            promote=config.promote,
            tags={
                "dataset_hash": data.dataset_hash,
                "feature_service": config.feature_service,
                "ranker_used": str(metadata["ranker_used"]).lower(),
                "served": served,
            },
        )
    return run_id, registration
