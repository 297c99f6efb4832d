"""The one place where errors become HTTP responses.

Every 422 has the documented FastAPI shape, ``{"detail": [{"loc", "msg", "type"}]}``,
whether pydantic or a service raised it; the offending input is never echoed
back (it may be a password, or text that cannot be encoded). Database errors
that a client's values cause answer 422; a database that cannot be reached
answers 503 with ``Retry-After``, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from catalog_api.errors import RateLimitedError, UnauthorizedError
from core.errors import MarqueeError, ServiceUnavailableError

logger = logging.getLogger(__name__)

#: Seconds a client should wait before retrying when a dependency (the database) is down.
UNAVAILABLE_RETRY_AFTER_S = 5


def _request_id(request: Request) -> str:
    return str(request.scope.get("request_id", ""))


def printable(value: object) -> str:
    """``value`` as text that always encodes as UTF-8 (unpaired surrogates become ``\\udXXX``)."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def validation_detail(loc: Sequence[Any], msg: str, kind: str = "value_error") -> dict[str, Any]:
    """One item of a 422 ``detail`` list, in FastAPI's documented ``ValidationError`` shape."""
    return {
        "loc": [item if isinstance(item, int) else printable(item) for item in loc],
        "msg": printable(msg),
        "type": printable(kind),
    }


def validation_response(request: Request, detail: list[dict[str, Any]], error: str) -> JSONResponse:
    """A 422 with ``detail`` (a list), the error class and the request id."""
    return JSONResponse({"detail": detail, "error": error, "request_id": _request_id(request)}, status_code=422)


async def request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    """Pydantic's errors without their inputs (never echo a password or an unencodable string)."""
    assert isinstance(exc, RequestValidationError)
    detail = [validation_detail(e.get("loc", ()), e.get("msg", ""), e.get("type", "value_error")) for e in exc.errors()]
    return validation_response(request, detail, "RequestValidationError")


async def marquee_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """``MarqueeError.http_status`` with a one-line message that says how to fix the call."""
    assert isinstance(exc, MarqueeError)
    status = exc.http_status
    if status == 422:
        return validation_response(request, [validation_detail(["body"], str(exc))], type(exc).__name__)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, ServiceUnavailableError):
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_S)
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = "Bearer"
    if status >= 500:
        logger.error("request %s failed: %s", _request_id(request), exc)
    return JSONResponse(
        {"detail": printable(exc), "error": type(exc).__name__, "request_id": _request_id(request)},
        status_code=status,
        headers=headers,
    )


async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refused (422), or a database that is gone (503 with Retry-After)."""
    assert isinstance(exc, DBAPIError | PoolTimeoutError)
    if isinstance(exc, DataError):
        logger.warning("request %s: the database refused a value: %s", _request_id(request), exc.orig)
        detail = [validation_detail(["body"], "a value does not fit its database column; check ranges and text")]
        return validation_response(request, detail, "DataError")
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError) or getattr(
        exc, "connection_invalidated", False
    ):
        logger.warning("request %s: database unavailable: %s", _request_id(request), type(exc).__name__)
        return JSONResponse(
            {
                "detail": "the database is unavailable; retry shortly",
                "error": "ServiceUnavailableError",
                "request_id": _request_id(request),
            },
            status_code=503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    return await unexpected_error_handler(request, exc)


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


class ErrorBody(BaseModel):
    """Every error but 422: a one-line ``detail``, the error class and the request id."""

    detail: str
    error: str
    request_id: str


class ValidationItem(BaseModel):
    """One refused value: where (``loc``), why (``msg``) and the kind of error."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationBody(BaseModel):
    """A 422: always a list of ``ValidationItem`` (never a bare string)."""

    detail: list[ValidationItem]
    error: str | None = None
    request_id: str | None = None


def _error(description: str, model: str = "ErrorBody") -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _codes_of(path: str, method: str, operation: dict[str, Any]) -> dict[int, dict[str, Any]]:
    codes: dict[int, dict[str, Any]] = {
        422: _error("a value was refused; `detail` lists each field", "ValidationBody"),
        503: _error("the database is unavailable; retry after `Retry-After` seconds"),
    }
    params = {p.get("name") for p in operation.get("parameters", [])}
    if operation.get("security") or path.startswith("/v1/auth"):
        codes[401] = _error("missing, invalid, expired or revoked credentials")
        codes[429] = _error("rate limited; retry after `Retry-After` seconds")
    if "{" in path or "profile_id" in params:
        codes[404] = _error("no such entity in this account or catalog")
    if method in ("post", "patch", "put"):
        codes[409] = _error("conflicts with the current state")
    if any(part in path for part in ("/titles", "/playback", "/events", "/experiments", "/home")):
        codes[403] = _error("not allowed for this profile or account")
    return codes


def document_error_responses(app: FastAPI) -> None:
    """Add the status codes each route really answers to the OpenAPI document.

    Derived from what an operation declares, in one place, so new routes are documented
    too: every ``/v1`` route may answer 422 (validation, always a list) and 503 (database
    gone); routes behind a bearer token 401 and 429 (per-account limit); routes with an id
    404; writes 409; routes that judge a title against a profile or need an admin 403.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorBody, ValidationItem, ValidationBody):
            schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for path, operations in spec.get("paths", {}).items():
            if not path.startswith("/v1"):
                continue
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for code, response in _codes_of(path, method, operation).items():
                    if code == 422 or str(code) not in responses:
                        responses[str(code)] = response
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(MarqueeError, marquee_error_handler)
    app.add_exception_handler(DBAPIError, database_error_handler)
    app.add_exception_handler(PoolTimeoutError, database_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
