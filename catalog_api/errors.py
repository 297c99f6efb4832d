"""API-specific errors, in the platform's one hierarchy (``core.errors``)."""

from __future__ import annotations

from core.errors import MarqueeError


class UnauthorizedError(MarqueeError):
    """Missing, malformed, expired or revoked credentials."""

    http_status = 401


class RateLimitedError(MarqueeError):
    """Too many requests; ``retry_after`` says how many seconds to wait."""

    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
