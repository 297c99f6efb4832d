"""Signed CDN URLs: HMAC-SHA256 over a path prefix and an expiry.

A URL carries ``exp`` (unix seconds), ``pfx`` (the signed path prefix) and
``sig``. Signing a prefix instead of one path lets one signature cover a whole
rendition (a DASH ``SegmentTemplate`` or an HLS media playlist and its
segments) while the CDN edge still refuses any path outside it. The edge calls
``verify_signed_url``; it needs only the shared key and a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qs, quote, urlsplit

from core.errors import ForbiddenError


def _signature(key: str, prefix: str, expires: int) -> str:
    message = f"{prefix}|{expires}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign_url(base_url: str, path: str, key: str, expires: int, prefix: str | None = None) -> str:
    """``base_url + path`` with a signature valid for paths under ``prefix`` (default: exactly ``path``)."""
    prefix = prefix or path
    if not path.startswith(prefix):
        raise ValueError(f"path {path!r} is not under the signed prefix {prefix!r}")
    return f"{base_url.rstrip('/')}{path}?{signed_query(prefix, key, expires)}"


def signed_query(prefix: str, key: str, expires: int) -> str:
    """Just the query string (for templates whose paths are filled in by the player)."""
    return f"exp={expires}&pfx={quote(prefix, safe='')}&sig={_signature(key, prefix, expires)}"


def verify_signed_url(url: str, key: str, now: float | None = None) -> str:
    """Check a signed URL at the edge; return its path, or raise ``ForbiddenError`` saying why.

    Fails when the signature is missing or does not match (tampered path,
    prefix or expiry, wrong key), when the path is outside the signed prefix,
    or when the URL has expired.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    try:
        expires = int(query["exp"][0])
        prefix = query["pfx"][0]
        signature = query["sig"][0]
    except (KeyError, IndexError, ValueError):
        raise ForbiddenError("unsigned URL: exp, pfx and sig query parameters are required") from None
    if not hmac.compare_digest(signature, _signature(key, prefix, expires)):
        raise ForbiddenError("bad signature: the URL was altered or signed with another key")
    if not parts.path.startswith(prefix):
        raise ForbiddenError(f"path {parts.path!r} is outside the signed prefix {prefix!r}")
    if (time.time() if now is None else now) >= expires:
        raise ForbiddenError(f"URL expired at {expires}; ask the API for a fresh manifest")
    return parts.path
