"""Run the ``temporal-user-80-20`` protocol: tune on validation, refit on train, score on test.

``evaluate_models`` is what ``marquee evaluate`` and ``bench/bench_quality.py``
call; the training pipeline reuses ``fit_model``, ``rank_users`` and ``score_split``.
"""

from __future__ import annotations

import inspect
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.errors import InvalidInputError
from models.base import CandidateGenerator, Interactions
from models.coverage_floor import fill_to_coverage, shown_titles
from models.ease import CatalogTooLargeError
from models.lightfm_hybrid import title_features as title_features  # re-exported: the tokens' owner is models
from models.registry import model_class, model_names
from training.metrics import summarise
from training.protocol import (
    PROTOCOL,
    Split,
    normalise_frame,
    temporal_user_split,
    to_interactions,
    validation_split,
)
from training.tuning import coordinate_search, search_space, tune_on_validation

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from training.ranker_evaluation import CandidateCollector

logger = logging.getLogger(__name__)

#: Always evaluated beside the requested models: the numbers to beat.
BASELINES = ("popularity", "ease", "recency_ease")
#: Titles each profile's list holds when it is scored (recall@20 reads them all).
LISTED = 20
#: How deep below the cut the coverage floor may look for titles nobody is shown: a ranker whose
#: top 20s are much alike (MovieTweetings, the full default set) runs out of them within the top 20.
FLOOR_DEPTH = 50
#: The baseline whose lists set the coverage floor of every other model's (``floor_of``): the
#: protocol's goal is coverage@10 no worse than recency-weighted EASE's.
COVERAGE_REFERENCE = "recency_ease"
#: The neural ranker's registry name: evaluated over the union of the other models' candidates.
RANKER = "neural-ranker"
#: Evaluated when ``--models`` is not given (``blend`` after the others: it blends them, with their tuned
#: params; the ranker last: it re-scores the union of every other model's candidates).
DEFAULT_MODELS = ("item_knn", "seqknn", "time_popularity", "als", "lightfm", "blend", RANKER)


def candidate_model_names() -> list[str]:
    """Registered models that are candidate generators (rankers cannot be evaluated alone)."""
    names = []
    for name in model_names():
        try:
            if issubclass(model_class(name), CandidateGenerator):
                names.append(name)
        except ImportError:
            continue
    return names


def check_model_names(names: Sequence[str]) -> list[str]:
    """Validate ``names`` against the registry (generators, and the ranker); clear error listing the known ones."""
    known = [*candidate_model_names(), RANKER]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInputError(f"unknown model(s) {', '.join(unknown)}; choose from: {', '.join(known)}")
    return list(dict.fromkeys(names))


def fit_model(
    name: str,
    params: Mapping[str, Any],
    train: pd.DataFrame,
    seed: int = 0,
    item_features: Mapping[str, Sequence[str]] | None = None,
) -> CandidateGenerator:
    """Build the registered model ``name`` with ``params`` and fit it on ``train`` (a protocol frame).

    ``item_features`` (title_id → tokens) reach the models that use them; only train
    titles are passed, so the catalog every model ranks stays the protocol's.
    """
    cls = model_class(name)
    kwargs = dict(params)
    if "seed" in inspect.signature(cls).parameters:
        kwargs.setdefault("seed", seed)
    model = cls(**kwargs)
    if not isinstance(model, CandidateGenerator):
        raise InvalidInputError(f"model {name!r} is a ranker, not a candidate generator; it cannot rank alone")
    context: dict[str, Any] = {}
    if item_features:
        known = set(train["item_id"].unique())
        context["item_features"] = {k: list(v) for k, v in item_features.items() if k in known}
    return model.fit(_interactions_of(train), **context)


#: ``to_interactions`` of recent frames, by identity, so that every fit on one (validation or
#: test) train frame shares one ``Interactions`` and hence one ``Histories`` index.
_CONVERTED: dict[int, tuple[Interactions, weakref.finalize[[int], pd.DataFrame]]] = {}


def _forget(key: int) -> None:
    _CONVERTED.pop(key, None)


def _interactions_of(train: pd.DataFrame) -> Interactions:
    key = id(train)
    if key in _CONVERTED:
        return _CONVERTED[key][0]
    interactions = to_interactions(train)
    _CONVERTED[key] = (interactions, weakref.finalize(train, _forget, key))
    while len(_CONVERTED) > 2:
        _CONVERTED.pop(next(iter(_CONVERTED)))[1].detach()
    return interactions


def rank_users(model: CandidateGenerator, users: Sequence[str], n: int = 20) -> dict[str, list[str]]:
    """user_id → top-``n`` item ids (seen items filtered), in batches."""
    out: dict[str, list[str]] = {}
    batch = 256
    for start in range(0, len(users), batch):
        chunk = list(users[start : start + batch])
        for user, rec in zip(chunk, model.recommend_batch(chunk, n), strict=True):
            out[user] = rec.item_ids.tolist()
    return out


def score_split(model: CandidateGenerator, split: Split) -> dict[str, float]:
    """The protocol's metrics of a fitted model on ``split.test``."""
    return score_ranked(rank_users(model, split.test_users, LISTED), split)


def score_ranked(ranked: Mapping[str, Sequence[str]], split: Split) -> dict[str, float]:
    """The protocol's metrics of ranked lists (user_id → top 20 item ids) on ``split.test``."""
    popularity = split.train.groupby("item_id")["user_id"].nunique().to_dict()
    return summarise(
        ranked,
        split.test_items(),
        n_items=int(split.train["item_id"].nunique()),
        popularity=popularity,
        n_users=int(split.train["user_id"].nunique()),
    )


def evaluate_model(
    name: str,
    split: Split,
    *,
    tune: bool = True,
    seed: int = 0,
    item_features: Mapping[str, Sequence[str]] | None = None,
    validation: Split | None = None,
    base_params: Mapping[str, Any] | None = None,
    collector: CandidateCollector | None = None,
    coverage_floor: int | None = None,
) -> dict[str, Any]:
    """Tune ``name`` on validation (from ``split.train`` only), refit on all of train, score on test.

    ``validation`` is ``validation_split(split.train)`` when the caller already made it
    (``evaluate_models`` makes it once for every model); otherwise it is made here. With a
    ``collector`` (the ranker is evaluated in this run) the model's candidate lists are handed to
    it twice: fitted with the chosen params on the validation train part, and on all of train.
    With ``coverage_floor`` (distinct titles; ``evaluate_models`` passes the reference baseline's)
    the test lists are scored under the coverage floor (``served_with_floor``).
    """
    check = getattr(model_class(name), "check_catalog", None)
    if check is not None:  # e.g. EASE on a catalog too large for memory: refuse before any fit
        check(int(split.train["item_id"].nunique()))
    params: dict[str, Any] = dict(base_params or {})
    tuning_seconds = 0.0
    space = search_space(name)
    kept: list[tuple[float, CandidateGenerator]] = []  # the best validation fit so far, for the collector
    if tune and space:
        started = time.perf_counter()

        def objective(p: Mapping[str, Any], val: Split) -> float:
            fitted = fit_model(name, p, val.train, seed, item_features)
            score = score_split(fitted, val)["ndcg@10"]
            if collector is not None and (not kept or score > kept[0][0] + 1e-9):  # coordinate_search's own rule
                kept[:] = [(score, fitted)]
            return score

        if validation is not None:
            result = coordinate_search(objective, validation, space, start=params)
        else:
            result = tune_on_validation(objective, split.train, space, start=params)
        params = result.params
        tuning_seconds = time.perf_counter() - started
    if collector is not None:
        validation_model = (
            kept[0][1] if kept else fit_model(name, params, collector.validation.train, seed, item_features)
        )
        kept.clear()
        collector.add_validation(name, validation_model)
        del validation_model
    started = time.perf_counter()
    model = fit_model(name, params, split.train, seed, item_features)
    fit_seconds = time.perf_counter() - started
    row = scored_row(rank_users(model, split.test_users, list_depth(coverage_floor)), split, coverage_floor)
    if collector is not None:
        collector.add_test(name, model)
    return {
        **row,
        "fit_seconds": round(fit_seconds, 2),
        "tuning_seconds": round(tuning_seconds, 1),
        "params": {k: v for k, v in getattr(model, "params", params).items() if k != "seed"},
    }


def list_depth(coverage_floor: int | None) -> int:
    """How long each test list must be ranked: ``LISTED``, or ``FLOOR_DEPTH`` for the coverage floor to draw on."""
    return LISTED if coverage_floor is None else FLOOR_DEPTH


def scored_row(ranked: Mapping[str, Sequence[str]], split: Split, coverage_floor: int | None) -> dict[str, Any]:
    """A model's report row from its test lists: the protocol's metrics and ``titles@10``.

    With ``coverage_floor`` the lists are served under it first (``served_with_floor``) and the
    row records what the floor did (``coverage_floor``). Every model's row, the ranker's included.
    """
    floor: dict[str, int] | None = None
    if coverage_floor is not None:
        ranked, floor = served_with_floor(ranked, split, coverage_floor)
    metrics = score_ranked(ranked, split)
    return {
        **{k: round(v, 4) for k, v in metrics.items()},
        "titles@10": shown_titles({u: ranked.get(u, []) for u in split.test_users}),
        **({"coverage_floor": floor} if floor is not None else {}),
    }


def served_with_floor(
    ranked: Mapping[str, Sequence[str]], split: Split, target_titles: int
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """The test profiles' lists under the coverage floor (``models.coverage_floor``), and what it did.

    The floor is the number of distinct titles the reference baseline's top 10 lists show the same
    profiles (``COVERAGE_REFERENCE``'s ``titles@10``): a model's lists may give their last top-10
    slots to titles nobody is shown until they show as many. ``ranked`` may be longer than ``LISTED``
    (``FLOOR_DEPTH``): newcomers may come from that deep, and each list is cut to ``LISTED`` after.
    Only the lists are read.
    """
    result = fill_to_coverage({u: ranked.get(u, []) for u in split.test_users}, target_titles)
    lists = {u: titles[:LISTED] for u, titles in result.lists.items()}
    record = {
        "target_titles": target_titles,
        "titles_before": result.titles_before,
        "titles_after": result.titles_after,
        "swaps": result.swaps,
        "profiles_touched": result.profiles_touched,
    }
    return lists, record


def evaluate_models(
    interactions: pd.DataFrame,
    models: Sequence[str] = DEFAULT_MODELS,
    *,
    dataset: str = "",
    tune: bool = True,
    seed: int = 0,
    progress: bool = True,
    item_features: Mapping[str, Sequence[str]] | None = None,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """The whole protocol on one dataset; the report ``marquee evaluate`` writes.

    Args:
        interactions: user_id, item_id, ts (and optionally weight), one row per interaction.
        models: registered candidate generators to evaluate; the baselines are always added.
        dataset: name written into the report.
        tune: tune hyper-parameters on validation (off: defaults, for quick checks).
        seed: seed of the models that draw random numbers.
        progress: show a progress bar.
        item_features: title_id → feature tokens for hybrid models (``title_features``).
        spark: make the split in this Spark session (``MARQUEE_ENGINE=spark``; the same rows).

    Returns:
        ``{"protocol", "dataset", "split", "models": {name: metrics}, "skipped": {name: reason},
        "best", "best_baseline", "ratio"}``. A model that cannot run on this catalog (EASE past
        what memory allows) is listed under ``skipped`` with the reason instead of failing the run.
    """
    names = order_models(check_model_names([*BASELINES, *models]))
    with_ranker = RANKER in names
    names = [n for n in names if n != RANKER]
    np.random.seed(seed)
    if spark is not None:
        from training import spark_frames

        split = spark_frames.temporal_user_split(spark.createDataFrame(normalise_frame(interactions)))
        validation = (
            spark_frames.temporal_user_split(spark.createDataFrame(split.train), drop_short_users=False)
            if tune or with_ranker
            else None
        )
    else:
        split = temporal_user_split(interactions)
        # One validation split for every model: the same rule, made once (it sorts all of train).
        validation = validation_split(split.train) if tune or with_ranker else None
    collector = None
    if with_ranker and validation is not None:
        from training.ranker_evaluation import CandidateCollector

        collector = CandidateCollector(validation, split)
    report: dict[str, Any] = {
        "protocol": PROTOCOL,
        "dataset": dataset,
        "split": split.describe(),
        "models": {},
        "skipped": {},
    }
    for name in tqdm(names, desc="models", disable=not progress):
        logger.info("evaluating %s", name)
        try:
            report["models"][name] = evaluate_model(
                name,
                split,
                tune=tune,
                seed=seed,
                item_features=item_features,
                validation=validation,
                base_params=member_params(name, report["models"]),
                collector=collector,
                coverage_floor=None if name in BASELINES else floor_of(report["models"]),
            )
        except CatalogTooLargeError as exc:
            logger.warning("skipping %s: %s", name, exc)
            report["skipped"][name] = str(exc)
    if collector is not None:
        from training.ranker_evaluation import evaluate_ranker

        logger.info("evaluating %s over %s", RANKER, collector.sources)
        try:
            report["models"][RANKER] = evaluate_ranker(collector, seed, floor_of(report["models"]))
        except ValueError as exc:  # no validation profile has a positive among its candidates
            logger.warning("skipping %s: %s", RANKER, exc)
            report["skipped"][RANKER] = str(exc)
    report.update(champion_rule(report["models"]))
    return report


def floor_of(results: Mapping[str, Mapping[str, Any]]) -> int | None:
    """The coverage floor of a run's models: the titles ``COVERAGE_REFERENCE``'s top 10s show (None: it did not run).

    The protocol's goal is coverage@10 no worse than recency-weighted EASE's, so its lists set the
    floor every other model's lists are served under (baselines are scored as they are).
    """
    reference = results.get(COVERAGE_REFERENCE)
    return None if reference is None else int(reference["titles@10"])


def champion_rule(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``best`` = the best non-baseline by ndcg@10, ``best_baseline`` likewise, ``ratio`` = best / best baseline.

    The one rule both ``marquee evaluate`` and the champion ``marquee train`` registers follow:
    a baseline is the number to beat, never the answer (``best`` is None when only baselines ran).
    """

    def value(n: str) -> float:
        return float(results[n]["ndcg@10"])

    ours = [n for n in results if n not in BASELINES]
    baselines = [n for n in results if n in BASELINES]
    best = max(ours, key=value) if ours else None
    baseline = max(baselines, key=value) if baselines else None
    ratio = None
    if best is not None and baseline is not None:
        ratio = round(value(best) / max(value(baseline), 1e-12), 3)
    return {"best": best, "best_baseline": baseline, "ratio": ratio}


def order_models(names: Sequence[str]) -> list[str]:
    """``names`` with models built from other models (a blend) after everything else, the ranker last."""
    return sorted(
        names, key=lambda n: (n == RANKER, n != RANKER and bool(getattr(model_class(n), "blends_members", False)))
    )


def member_params(name: str, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """For a blend: its members' tuned params from the models already evaluated in this run; else nothing."""
    cls = model_class(name)
    if not getattr(cls, "blends_members", False):
        return {}
    members = inspect.signature(cls).parameters["members"].default
    return {"member_params": {m: dict(results[m]["params"]) for m in members if m in results}}


#: Params too long for the table (a blend's members' own params); the JSON report keeps them.
HIDDEN_PARAMS = ("member_params", "members", "seed", "sources")


def format_table(report: Mapping[str, Any]) -> str:
    """The report as a Markdown table (the README and the CLI print the same thing)."""
    lines = [
        "| model | ndcg@10 | recall@20 | coverage@10 | map@10 | fit s | params |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in sorted(report["models"].items(), key=lambda kv: kv[1]["ndcg@10"]):
        params = ", ".join(f"{k}={v}" for k, v in m.get("params", {}).items() if k not in HIDDEN_PARAMS) or "—"
        label = f"{name} (baseline)" if name in BASELINES else name
        lines.append(
            f"| {label} | {m['ndcg@10']:.4f} | {m['recall@20']:.4f} | {m['coverage@10']:.3f} | "
            f"{m.get('map@10', float('nan')):.4f} | {m['fit_seconds']:.1f} | {params} |"
        )
    return "\n".join(lines)
