"""Request ids, structured access logs and Prometheus metrics (a pure ASGI middleware)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("catalog_api.access")

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Metrics:
    """The API's metrics in their own registry (one per app, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "marquee_api_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "marquee_api_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.home_pages = Counter(
            "marquee_api_home_pages",
            "Home pages served, by source and reason",
            ["source", "reason"],
            registry=self.registry,
        )
        self.candidate_cache = Counter(
            "marquee_api_candidate_cache",
            "Home pages whose model-server answer came from the candidate cache (hit), from a stale entry being "
            "refreshed in the background (stale), or from the server (miss)",
            ["result"],
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            "marquee_api_model_circuit_open", "1 while the model-server circuit is not closed", registry=self.registry
        )


class ObservabilityMiddleware:
    """Gives every request an id (``X-Request-ID``, echoed back), logs it as JSON and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        from_client = bool(_VALID_ID.match(incoming))
        request_id = incoming if from_client else uuid.uuid4().hex
        scope["request_id"] = request_id
        # A client's id correlates logs; it is not unique (a retry, a buggy client): what needs a unique
        # key (a page's exposures) asks ``services.exposures.page_id``, which reads this flag.
        scope["request_id_from_client"] = from_client
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(template).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s",
                    json.dumps(
                        {
                            "request_id": request_id,
                            "method": scope["method"],
                            "route": template,
                            "path": scope["path"],
                            "status": status,
                            "ms": round(elapsed * 1000, 2),
                        }
                    ),
                )
