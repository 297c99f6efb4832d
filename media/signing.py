"""The URL-signing scheme the edges verify: nginx ``secure_link`` over a path prefix and an expiry.

Debian's nginx has ``ngx_http_secure_link_module`` (MD5) but not the HMAC variant,
so the scheme is what that module checks::

    md5 = base64url(MD5(f"{expires}{prefix} {secret}"))   # no padding
    URL = <edge><path>?md5=<md5>&expires=<unix seconds>&pfx=<prefix>

The signature covers a path *prefix* (``/v/<content>/<version>/``), not one path:
an HLS media playlist names its segments relatively and a DASH ``SegmentTemplate``
lets the player build the paths, so one signature must cover a whole title version.
The edge refuses any path outside the signed prefix (a regular expression with a
back-reference compares ``$arg_pfx`` with the normalised ``$uri``), a changed
expiry, prefix or signature (the MD5 no longer matches), and an expired URL.

The prefix travels unencoded in the query (nginx's ``$arg_pfx`` is not URL-decoded),
so it is limited to characters that need no encoding (``SAFE_PREFIX``).

MD5 here is a keyed check with a server-side secret, as nginx implements it; it is
what the installed edge can verify. A build with ``secure_link_hmac`` would switch
``signature`` to HMAC-SHA256 with no change to the URL layout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs, urlsplit

from core.errors import ForbiddenError

#: Characters a signed prefix may contain (it is matched literally by nginx).
SAFE_PREFIX = re.compile(r"^/[A-Za-z0-9._~:@!,;=+/-]*/$")
#: Characters a secret may contain (it is written into the edge's configuration inside quotes).
SAFE_SECRET = re.compile(r"^[A-Za-z0-9._~+/=:@,-]{16,}$")
#: Query parameter names (also used by the edge configuration).
SIGNATURE_ARG, EXPIRES_ARG, PREFIX_ARG = "md5", "expires", "pfx"


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can be signed, else raise ``ValueError`` saying why."""
    if not SAFE_PREFIX.match(prefix) or "/../" in prefix or "/./" in prefix or "//" in prefix:
        raise ValueError(
            f"cannot sign prefix {prefix!r}: it must start and end with '/' "
            "and use only letters, digits and ._~:@!,;=+-"
        )
    return prefix


def check_secret(secret: str) -> str:
    """Return ``secret`` if nginx's configuration can carry it verbatim, else raise ``ValueError``."""
    if not SAFE_SECRET.match(secret):
        raise ValueError(
            "the CDN signing key must be at least 16 characters of letters, digits and ._~+/=:@,- "
            "(it is written into the edge configuration)"
        )
    return secret


def signature(prefix: str, expires: int, secret: str) -> str:
    """The ``md5`` argument nginx's ``secure_link_md5 "$secure_link_expires$arg_pfx <secret>"`` computes."""
    digest = hashlib.md5(f"{expires}{prefix} {secret}".encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def signed_query(prefix: str, secret: str, expires: int) -> str:
    """The query string valid for every path under ``prefix`` until ``expires`` (unix seconds)."""
    check_prefix(prefix)
    return f"{SIGNATURE_ARG}={signature(prefix, expires, secret)}&{EXPIRES_ARG}={expires}&{PREFIX_ARG}={prefix}"


def sign_url(base_url: str, path: str, secret: str, expires: int, prefix: str | None = None) -> str:
    """``base_url + path`` signed for ``prefix`` (default: the folder of ``path``)."""
    prefix = prefix or path[: path.rindex("/") + 1]
    if not path.startswith(prefix):
        raise ValueError(f"path {path!r} is not under the signed prefix {prefix!r}")
    return f"{base_url.rstrip('/')}{path}?{signed_query(prefix, secret, expires)}"


def verify_signed_url(url: str, secret: str, now: float | None = None) -> str:
    """Check a signed URL as the edge does; return its path, or raise ``ForbiddenError`` saying why.

    The edge itself is nginx; this Python twin serves tests and tools that need the
    same answer without a running edge.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    try:
        given = query[SIGNATURE_ARG][0]
        expires = int(query[EXPIRES_ARG][0])
        prefix = query[PREFIX_ARG][0]
    except (KeyError, IndexError, ValueError):
        raise ForbiddenError("unsigned URL: md5, expires and pfx query parameters are required") from None
    if not hmac.compare_digest(given, signature(prefix, expires, secret)):
        raise ForbiddenError("bad signature: the URL was altered or signed with another key")
    if not parts.path.startswith(prefix) or "/../" in parts.path:
        raise ForbiddenError(f"path {parts.path!r} is outside the signed prefix {prefix!r}")
    if (time.time() if now is None else now) >= expires:
        raise ForbiddenError(f"URL expired at {expires}; ask the API for a fresh manifest")
    return parts.path
