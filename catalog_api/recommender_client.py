"""HTTP client of the model server (``serving``), with a time budget and a circuit breaker.

Speaks the pydantic contract of ``serving.contract`` over HTTP, so the API never
imports BentoML, torch or Feast. Every call either returns a validated response
or raises ``ServiceUnavailableError`` quickly: on timeout, connection error,
a non-2xx status, an invalid body, or while the circuit is open. Callers fall
back to popularity on that error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from catalog_api.circuit_breaker import CircuitBreaker
from core.errors import ServiceUnavailableError
from serving.contract import (
    RankRequest,
    RankResponse,
    RecommendRequest,
    RecommendResponse,
    SimilarRequest,
    SimilarResponse,
)

logger = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT", bound=BaseModel)


class RecommenderClient:
    """Async client of ``POST {base_url}/recommend``, ``/similar`` and ``/rank``.

    Args:
        base_url: the model server's address (``settings.serving_url``).
        budget_s: total time allowed per call (connect + response).
        breaker: shared circuit breaker; one per model server.
        transport: an httpx transport, for tests that inject faults.
    """

    def __init__(
        self,
        base_url: str,
        budget_s: float,
        breaker: CircuitBreaker,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget_s = budget_s
        self.breaker = breaker
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(budget_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()

    async def _post(self, path: str, body: BaseModel, response_type: type[ResponseT]) -> ResponseT:
        if not self.breaker.allow():
            raise ServiceUnavailableError(f"model server circuit is open; not calling {path}")
        try:
            response = await self._client.post(path, content=body.model_dump_json(), headers=_JSON)
            response.raise_for_status()
            parsed = response_type.model_validate_json(response.content)
        except asyncio.CancelledError:
            # The caller's page budget ran out first; count it so a half-open probe is never left dangling.
            self.breaker.record_failure()
            raise
        except (httpx.HTTPError, ValidationError) as exc:
            self.breaker.record_failure()
            logger.warning("model server %s%s failed: %s: %s", self.base_url, path, type(exc).__name__, exc)
            raise ServiceUnavailableError(f"model server call {path} failed: {type(exc).__name__}") from exc
        self.breaker.record_success()
        return parsed

    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        """Top-k titles for a profile."""
        return await self._post("/recommend", request, RecommendResponse)

    async def similar(self, request: SimilarRequest) -> SimilarResponse:
        """Titles similar to one title."""
        return await self._post("/similar", request, SimilarResponse)

    async def rank(self, request: RankRequest) -> RankResponse:
        """Given titles scored for a profile."""
        return await self._post("/rank", request, RankResponse)


_JSON = {"content-type": "application/json"}
