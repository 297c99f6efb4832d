"""The BentoML model server: ``bentoml serve serving.service:MarqueeRecommender``.

A thin shell around ``serving.pipeline.RecommendationPipeline``: parse with the
shared pydantic contract, pick champion or challenger, call the pipeline, count
what happened. Models come from the MLflow registry by alias and follow the
aliases without a restart (``serving.loader``).

Settings come from the environment through one object, ``serving.options.ServingOptions``:
traffic settings are read when this module is imported, because BentoML takes them
from the class decorator; the rest when each worker starts (``__init__``):

* ``MARQUEE_SERVING_TIMEOUT_S`` (default 0.5): per-request timeout; a page must
  never wait longer for recommendations, the API falls back instead.
* ``MARQUEE_SERVING_MAX_CONCURRENCY`` (default 64): requests in flight before
  BentoML answers 503 right away, so overload sheds load instead of queueing.
* ``MARQUEE_SERVING_WORKERS`` (default 2): worker processes, one per core. On a
  2-core machine two workers answered 367 instead of 236 req/s at concurrency 16,
  p99 92 instead of 619 ms (``bench/bench_serving.py``). Each worker loads the
  models and follows the aliases on its own, so for up to one poll interval after
  an alias moves the two workers may answer with different versions.
* ``MARQUEE_SERVING_POLL_S`` (default 5), ``MARQUEE_SERVING_CANDIDATES`` (default
  100, the bundle's ``candidate_k`` wins), ``MARQUEE_SERVING_ONLINE_FEATURES``
  (default on): read at start-up, in ``__init__``.
* ``MARQUEE_SERVING_MEMO_S`` (default 120): how long a viewer context's ranked
  candidates are remembered per worker (the key is the whole context, so a new
  watch is a new key); 0 turns it off (benchmarks of cold requests).
* ``MARQUEE_SERVING_ACCESS_LOG`` (default off): BentoML's per-request access log.
  Off by default because a log line per request costs a visible share of a
  1 ms request; ``/metrics`` counts requests, latencies and fallbacks instead.

The APIs are ``async``: the pipeline needs about a millisecond of CPU, so a
thread-pool hop per request would cost more than it saves.
"""

from __future__ import annotations

import logging
import os
import time
from http import HTTPStatus
from typing import Any

import bentoml
import numpy as np
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json
from starlette.responses import JSONResponse, Response

from core.errors import MarqueeError, NotFoundError
from core.memory import start_releasing_free_memory, tune_malloc
from serving.contract import (
    BatchRecommendRequest,
    BatchRecommendResponse,
    HomeCandidatesRequest,
    HomeCandidatesResponse,
    RankRequest,
    RankResponse,
    RecommendRequest,
    RecommendResponse,
    SimilarRequest,
    SimilarResponse,
    SimilarSeed,
    Variant,
    ViewerContext,
)
from serving.loader import ModelLoader
from serving.options import ServingOptions
from serving.pipeline import Scored, Viewer

logger = logging.getLogger(__name__)

# The service's entry module, imported before any model: a ranker call scores ~100 rows, where
# OpenMP/BLAS worker threads only add hand-offs (measured: 39 ms instead of 0.1 ms per call on a
# busy 2-core machine). torch.set_num_threads() would only cover the thread that calls it; the
# API runs on the event loop thread, so the environment is the one setting that reaches it.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

#: What BentoML reads from the class decorator, before any worker exists (``serving.options``).
DECORATOR_OPTIONS = ServingOptions.from_environ()

RECOMMENDATIONS = bentoml.metrics.Counter(
    name="marquee_recommendations",
    documentation="Answers by endpoint, variant and source (model or fallback).",
    labelnames=["endpoint", "variant", "source"],
)
FALLBACKS = bentoml.metrics.Counter(
    name="marquee_fallbacks",
    documentation="Fallback answers by reason (unknown_profile, model_error, filtered_out, no_personal_model).",
    labelnames=["endpoint", "reason"],
)
MODEL_SWAPS = bentoml.metrics.Counter(
    name="marquee_model_swaps",
    documentation="Hot reloads: an alias moved and the new version was loaded.",
    labelnames=["alias"],
)
PIPELINE_SECONDS = bentoml.metrics.Histogram(
    name="marquee_pipeline_seconds",
    documentation="Time spent in the recommendation pipeline (candidates, features, ranking, filters).",
    labelnames=["endpoint"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
)


class ServingError(BentoMLException):
    """A Marquee error on its way out as an HTTP status with a clear message."""

    def __init__(self, exc: MarqueeError) -> None:
        super().__init__(str(exc), error_code=HTTPStatus(exc.http_status))


def error_response(exc: MarqueeError) -> JSONResponse:
    """``{"error": message}`` with the status code of the error class (404, 422, 503...)."""
    return JSONResponse({"error": str(exc)}, status_code=exc.http_status)


def _json(body: dict[str, Any], model: type[BaseModel]) -> Response:
    """``body`` (the wire form of a ``model``) as one JSON response.

    Built as plain dicts and encoded by pydantic-core's serializer: constructing and
    validating a pydantic object per title (120 per page) and dumping them cost ~0.4 ms
    of a cold page, the standard library's encoder ~80 µs, this ~17 µs. The parsed
    answer is the model's (``model`` documents the schema; ``tests/test_serving_service.py``
    checks both encodings agree): a non-finite score is written as ``null``, as the model
    writes it; a value the serializer does not know (a numpy scalar) takes pydantic's
    own path, so such an answer is what it was.
    """
    try:
        text = to_json(body, inf_nan_mode="null")
    except PydanticSerializationError:
        text = model.model_validate(body).model_dump_json().encode()
    return Response(text, media_type="application/json")


def _items(scored: Scored) -> list[dict[str, Any]]:
    """``list[ScoredTitle]`` on the wire."""
    return [{"title_id": t, "score": s} for t, s in scored.items]


@bentoml.service(
    name="marquee-recommender",
    traffic={"timeout": DECORATOR_OPTIONS.timeout_s, "max_concurrency": DECORATOR_OPTIONS.max_concurrency},
    workers=DECORATOR_OPTIONS.workers,
    logging={"access": {"enabled": DECORATOR_OPTIONS.access_log}},
)
class MarqueeRecommender:
    """Recommend, rank and similar-titles from the registered champion and challenger."""

    def __init__(self) -> None:
        """Build this worker's settings from the environment at start-up and start loading models."""
        from core.settings import Settings

        tune_malloc()  # the mmap threshold; the arena cap came from MALLOC_ARENA_MAX (core.memory)
        settings = Settings()
        self.options = options = ServingOptions.from_environ()
        self.loader = ModelLoader(
            settings,
            poll_s=options.poll_s,
            n_candidates=options.n_candidates,
            use_online_features=options.online_features,
            memo_s=options.memo_s,
        )
        self.loader.on_swap = lambda alias, version: MODEL_SWAPS.labels(alias=alias).inc()
        self.loader.start(background=True)
        start_releasing_free_memory()  # RSS flat under a long soak (core.memory)

    def __is_ready__(self) -> bool:
        """``/readyz`` answers 503 until the champion is loaded."""
        return self.loader.ready

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self.loader.stop()

    def _recommend_one(self, viewer: Viewer, k: int, variant: str) -> dict[str, Any]:
        """A ``RecommendResponse`` on the wire."""
        model = self.loader.get(variant)
        started = time.perf_counter()
        scored = model.pipeline.recommend(viewer, k)
        PIPELINE_SECONDS.labels(endpoint="recommend").observe(time.perf_counter() - started)
        RECOMMENDATIONS.labels(endpoint="recommend", variant=variant, source=scored.source).inc()
        if scored.reason:
            FALLBACKS.labels(endpoint="recommend", reason=scored.reason).inc()
        return {
            "items": _items(scored),
            "model_version": model.version,
            "source": scored.source,
            "reason": scored.reason,
        }

    # The APIs return a finished ``Response``: one JSON body with a Content-Length, instead of
    # BentoML's chunked IterableResponse, whose three ASGI messages each cross every middleware
    # (py-spy: a quarter of a request's server time). ``output_spec`` still documents the schema.

    @bentoml.api(input_spec=RecommendRequest, output_spec=RecommendResponse)
    async def recommend(self, viewer: ViewerContext, k: int = 10, variant: Variant = "champion") -> Response:
        """The ``k`` best titles for the viewer after maturity, licensing, completed and exclude filters."""
        try:
            return _json(self._recommend_one(Viewer.of(viewer), k, variant), RecommendResponse)
        except MarqueeError as exc:
            return error_response(exc)

    @bentoml.api(input_spec=BatchRecommendRequest, output_spec=BatchRecommendResponse)
    async def recommend_batch(self, requests: list[RecommendRequest]) -> Response:
        """``/recommend`` for several profiles in one call, answers in request order."""
        try:
            answers = [self._recommend_one(Viewer.of(r.viewer), r.k, r.variant) for r in requests]
            return _json({"responses": answers}, BatchRecommendResponse)
        except MarqueeError as exc:
            return error_response(exc)

    @bentoml.api(input_spec=RankRequest, output_spec=RankResponse)
    async def rank(self, viewer: ViewerContext, title_ids: list[str], variant: Variant = "champion") -> Response:
        """The given titles ordered for the viewer (titles it may not see are left out)."""
        try:
            model = self.loader.get(variant)
            scored = model.pipeline.rank(Viewer.of(viewer), title_ids)
        except MarqueeError as exc:
            return error_response(exc)
        RECOMMENDATIONS.labels(endpoint="rank", variant=variant, source=scored.source).inc()
        if scored.reason:
            FALLBACKS.labels(endpoint="rank", reason=scored.reason).inc()
        return _json({"items": _items(scored), "model_version": model.version, "source": scored.source}, RankResponse)

    @bentoml.api(input_spec=SimilarRequest, output_spec=SimilarResponse)
    async def similar(
        self, viewer: ViewerContext, title_id: str, k: int = 10, variant: Variant = "champion"
    ) -> Response:
        """Titles similar to one title, for the viewer of ``variant``; an unknown title is a 404 with the reason."""
        try:
            return _json(self._similar_one(Viewer.of(viewer), title_id, k, variant), SimilarResponse)
        except MarqueeError as exc:
            return error_response(exc)

    def _similar_one(self, viewer: Viewer, title_id: str, k: int, variant: str) -> dict[str, Any]:
        """A ``SimilarResponse`` on the wire."""
        model = self.loader.get(variant)
        scored = model.pipeline.similar(viewer, title_id, k)
        return {"items": _items(scored), "model_version": model.version}

    @bentoml.api(input_spec=HomeCandidatesRequest, output_spec=HomeCandidatesResponse)
    async def home_candidates(
        self, viewer: ViewerContext, k: int = 10, variant: Variant = "champion", similar: SimilarSeed | None = None
    ) -> Response:
        """``/recommend`` and ``/similar`` for one home page in one call, from one viewer context.

        The similar titles are ``null`` when the seed title is unknown to the
        model (a page can do without that row); any other error fails the call
        like ``/recommend`` would.
        """
        resolved = Viewer.of(viewer)
        try:
            picks = self._recommend_one(resolved, k, variant)
        except MarqueeError as exc:
            return error_response(exc)
        alike: dict[str, Any] | None = None
        if similar is not None:
            try:
                alike = self._similar_one(resolved, similar.title_id, similar.k, variant)
            except NotFoundError:
                FALLBACKS.labels(endpoint="home_candidates", reason="unknown_seed").inc()
            except MarqueeError as exc:
                return error_response(exc)
        return _json({"recommend": picks, "similar": alike}, HomeCandidatesResponse)

    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=5)
    def score(self, features: np.ndarray) -> np.ndarray:
        """The champion ranker's scores for feature rows, (n, d) → (n,), with adaptive batching.

        Concurrent calls are merged into one ranker call by BentoML's adaptive batcher
        (up to 256 rows, waiting at most 5 ms), which is where batching pays: the
        ranker's per-call overhead is larger than its per-row cost.
        """
        try:
            return self.loader.get("champion").pipeline.score_rows(features)
        except MarqueeError as exc:
            raise ServingError(exc) from exc
