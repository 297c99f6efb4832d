"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from catalog_api.api.deps import StateDep
from catalog_api.recommender_client import BreakerState

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: StateDep) -> JSONResponse:
    """Ready when the database answers and the catalog is loaded; reports the model server's circuit."""
    checks: dict[str, Any] = {}
    try:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness must report, not raise
        checks["database"] = f"error: {type(exc).__name__}"
    checks["catalog_titles"] = len(state.catalog.snapshot)
    checks["model_server"] = state.recommender.breaker.state.value
    checks["cdn_edges"] = state.playback.edges.status()
    ready = checks["database"] == "ok" and checks["catalog_titles"] > 0
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Prometheus exposition of the API's own registry."""
    state.metrics.breaker_open.set(0 if state.recommender.breaker.state is BreakerState.CLOSED else 1)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
