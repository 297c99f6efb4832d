"""HTTP client of the model server (``serving``), with a time budget and a circuit breaker.

Speaks the pydantic contract of ``serving.contract`` over HTTP, so the API never
imports BentoML, torch or Feast. Every call either returns a validated response
or raises ``ServiceUnavailableError`` quickly: on timeout, connection error,
a non-2xx status, an invalid body, or while the circuit is open. Callers fall
back to popularity on that error.

The client is aiohttp, not httpx: on the home page's hot path an httpx call
cost 1.8 ms of CPU against 0.27 ms for aiohttp (same server, same body,
measured side by side), and the API process shares its cores with the model
server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from catalog_api.circuit_breaker import CircuitBreaker
from core.errors import ServiceUnavailableError
from serving.contract import (
    HomeCandidatesRequest,
    HomeCandidatesResponse,
    RankRequest,
    RankResponse,
    RecommendRequest,
    RecommendResponse,
    SimilarRequest,
    SimilarResponse,
)

logger = logging.getLogger(__name__)

ResponseT = TypeVar("ResponseT", bound=BaseModel)

_JSON = {"content-type": "application/json"}


class CircuitOpenError(ServiceUnavailableError):
    """The circuit is open: the model server was not called."""


class ModelTimeoutError(ServiceUnavailableError):
    """The model server did not answer within the budget."""


class RecommenderClient:
    """Async client of ``POST {base_url}/home_candidates``, ``/recommend``, ``/similar`` and ``/rank``.

    Args:
        base_url: the model server's address (``settings.serving_url``).
        budget_s: total time allowed per call (connect + response).
        breaker: shared circuit breaker; one per model server.
    """

    def __init__(self, base_url: str, budget_s: float, breaker: CircuitBreaker) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget_s = budget_s
        self.breaker = breaker
        # One pooled session per event loop: it is made on first use inside the loop (aiohttp
        # binds a session to the loop that made it; tests start apps on several loops).
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.budget_s),
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=64, keepalive_timeout=30),
                headers=_JSON,
            )
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        """Close pooled connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _post(
        self, path: str, body: BaseModel, response_type: type[ResponseT], budget_s: float | None = None
    ) -> ResponseT:
        if not self.breaker.allow():
            raise CircuitOpenError(f"model server circuit is open; not calling {path}")
        budget = self.budget_s if budget_s is None else budget_s
        # Only an explicit budget overrides the session's (aiohttp reads ``timeout=None`` as "no timeout").
        extra: dict[str, Any] = {} if budget_s is None else {"timeout": aiohttp.ClientTimeout(total=budget_s)}
        try:
            async with self._client().post(self.base_url + path, data=body.model_dump_json(), **extra) as response:
                content = await response.read()
                if response.status >= 400:
                    raise aiohttp.ClientResponseError(
                        response.request_info,
                        (),
                        status=response.status,
                        message=content[:200].decode(errors="replace"),
                    )
            parsed = response_type.model_validate_json(content)
        except asyncio.CancelledError:
            # The caller's page budget ran out first; count it so a half-open probe is never left dangling.
            self.breaker.record_failure()
            raise
        except TimeoutError as exc:
            self.breaker.record_failure()
            logger.warning("model server %s%s did not answer within %.3f s", self.base_url, path, budget)
            raise ModelTimeoutError(f"model server call {path} timed out after {budget} s") from exc
        except (aiohttp.ClientError, ValidationError) as exc:
            self.breaker.record_failure()
            logger.warning("model server %s%s failed: %s: %s", self.base_url, path, type(exc).__name__, exc)
            raise ServiceUnavailableError(f"model server call {path} failed: {type(exc).__name__}") from exc
        self.breaker.record_success()
        return parsed

    async def home_candidates(
        self, request: HomeCandidatesRequest, budget_s: float | None = None
    ) -> HomeCandidatesResponse:
        """Top picks and similar titles for one home page, in one round trip (``budget_s``: other than a page's)."""
        return await self._post("/home_candidates", request, HomeCandidatesResponse, budget_s)

    async def recommend(self, request: RecommendRequest) -> RecommendResponse:
        """Top-k titles for a profile."""
        return await self._post("/recommend", request, RecommendResponse)

    async def similar(self, request: SimilarRequest) -> SimilarResponse:
        """Titles similar to one title."""
        return await self._post("/similar", request, SimilarResponse)

    async def rank(self, request: RankRequest) -> RankResponse:
        """Given titles scored for a profile."""
        return await self._post("/rank", request, RankResponse)
