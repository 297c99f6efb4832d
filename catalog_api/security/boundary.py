"""Refuse paths and query strings that no field may hold, before any route reads them.

Path and query parameters (``profile_id``, ``q``, ``genre``...) become SQL
parameters and log lines; a NUL byte or bytes that are not UTF-8 would reach
PostgreSQL (which refuses NUL in text) or the logs. Body fields are checked by
their schemas (``schemas.common.SafeStr``); this middleware covers what
reaches routes outside a body, with the same 422 shape naming the parameter.
"""

from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from catalog_api.api.errors import printable, validation_detail
from catalog_api.schemas.common import text_problem


def _decode(raw: bytes) -> tuple[str | None, str | None]:
    """The text of percent-decoded ``raw`` and None, or None and why it is refused."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "is not valid UTF-8"
    return text, text_problem(text)


def find_problem(path_bytes: bytes, query: bytes) -> tuple[list[str], str] | None:
    """The location and reason of the first refused part of a request target, or None."""
    _, problem = _decode(unquote_to_bytes(path_bytes))
    if problem:
        return ["path"], problem
    for pair in query.split(b"&") if query else []:
        raw_key, _, raw_value = pair.partition(b"=")
        key, key_problem = _decode(unquote_to_bytes(raw_key.replace(b"+", b" ")))
        if key_problem or key is None:
            return ["query", printable(raw_key.decode("latin-1"))], f"parameter name {key_problem}"
        _, value_problem = _decode(unquote_to_bytes(raw_value.replace(b"+", b" ")))
        if value_problem:
            return ["query", key], value_problem
    return None


class BoundaryMiddleware:
    """Answers 422 (the documented validation shape) to a request target with NUL or invalid text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        found = find_problem(raw_path, scope.get("query_string") or b"")
        if found is None:
            await self.app(scope, receive, send)
            return
        loc, problem = found
        body = json.dumps(
            {
                "detail": [validation_detail(loc, problem)],
                "error": "RequestValidationError",
                "request_id": str(scope.get("request_id", "")),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 422,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
