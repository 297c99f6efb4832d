"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from catalog_api.errors import RateLimitedError, UnauthorizedError
from core.errors import MarqueeError

logger = logging.getLogger(__name__)


def _request_id(request: Request) -> str:
    return str(request.scope.get("request_id", ""))


async def marquee_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """``MarqueeError.http_status`` with a one-line message that says how to fix the call."""
    assert isinstance(exc, MarqueeError)
    status = exc.http_status
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        logger.error("request %s failed: %s", _request_id(request), exc)
    return JSONResponse(
        {"detail": str(exc), "error": type(exc).__name__, "request_id": _request_id(request)},
        status_code=status,
        headers=headers,
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A bug: log the traceback, answer 500 with the request id and no internals."""
    logger.exception("request %s: unexpected %s", _request_id(request), type(exc).__name__, exc_info=exc)
    return JSONResponse(
        {
            "detail": "internal error; report this request id",
            "error": "InternalError",
            "request_id": _request_id(request),
        },
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(MarqueeError, marquee_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
