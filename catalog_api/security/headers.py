"""Security headers on every response, and the Content Security Policy of the web page.

The page loads only its own scripts and styles (no inline script), and plays
media from the CDN edges, which live on other origins: ``media-src`` and
``connect-src`` name those origins (hls.js and dash.js fetch segments with
XHR/fetch), and ``blob:`` is allowed for Media Source Extensions, which hand
the video element a ``blob:`` URL. API responses get a policy that allows
nothing, since JSON is never a document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Headers every response carries.
COMMON_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)
#: The policy of JSON responses: not a document, nothing to load, never framed.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
#: FastAPI's interactive docs load Swagger UI / ReDoc from their CDN with inline script: no page policy there.
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, or None when it has no network location."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def page_policy(edge_origins: Iterable[str]) -> str:
    """The CSP of the web page, allowing media and segment fetches from ``edge_origins``."""
    edges = " ".join(sorted({o for o in (origin_of(u) for u in edge_origins) if o}))
    media = f"'self' blob: {edges}".strip()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: {edges}".strip(),
            f"media-src {media}",
            f"connect-src 'self' blob: {edges}".strip(),  # the player loads the manifest it was given as a blob
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    """Adds ``COMMON_HEADERS`` and a CSP (the page policy on HTML, ``API_POLICY`` elsewhere)."""

    def __init__(self, app: ASGIApp, edge_origins: Callable[[], Iterable[str]] = tuple) -> None:
        """``edge_origins`` is asked on each page: edges published after start-up join the policy."""
        self.app = app
        self.edge_origins = edge_origins
        self._policy_for: tuple[str, ...] | None = None
        self._page_policy = b""
        self.common = [(k.lower().encode(), v.encode()) for k, v in COMMON_HEADERS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                policy = self.page_policy() if content_type.startswith(b"text/html") else API_POLICY.encode()
                headers.extend((k, v) for k, v in self.common if k not in names)
                if b"content-security-policy" not in names and scope["path"] not in DOCS_PATHS:
                    headers.append((b"content-security-policy", policy))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def page_policy(self) -> bytes:
        """The page's CSP for the current edges (rebuilt only when they change)."""
        origins = tuple(self.edge_origins())
        if origins != self._policy_for:
            self._page_policy, self._policy_for = page_policy(origins).encode(), origins
        return self._page_policy
