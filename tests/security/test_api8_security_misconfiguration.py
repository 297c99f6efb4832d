"""OWASP API8:2023 Security Misconfiguration: headers, CSP, proxies, no tracebacks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from catalog_api.options import ApiOptions, CdnEdge
from tests.api.support import signup_and_login

from .conftest import client_for


def _directives(policy: str) -> dict[str, set[str]]:
    parts = [p.strip().split() for p in policy.split(";") if p.strip()]
    return {p[0]: set(p[1:]) for p in parts}


def test_the_web_page_has_a_csp_that_allows_only_its_own_code_and_the_edges(make_app: Callable[..., Any]) -> None:
    edges = (
        CdnEdge("local-a", "http://127.0.0.1:18081/media", ("US",)),
        CdnEdge("local-b", "http://127.0.0.1:18082", ("GB",)),
    )
    client = client_for(make_app(ApiOptions(cdn_edges=edges)))
    page = client.get("/")
    assert page.status_code == 200
    csp = _directives(page.headers["Content-Security-Policy"])
    assert csp["script-src"] == {"'self'"}  # no inline script, no eval, no foreign script
    assert csp["object-src"] == {"'none'"} and csp["frame-ancestors"] == {"'none'"}
    for directive in ("media-src", "connect-src"):
        assert {"http://127.0.0.1:18081", "http://127.0.0.1:18082"} <= csp[directive], directive
    assert "blob:" in csp["media-src"]  # Media Source Extensions
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    script = client.get("/static/app.js")
    assert script.status_code == 200 and script.headers["X-Content-Type-Options"] == "nosniff"


def test_json_answers_carry_a_policy_that_allows_nothing(api: TestClient) -> None:
    response = api.get("/v1/titles")
    assert response.status_code == 401
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_policy_names_origins_not_paths() -> None:
    from catalog_api.security.headers import page_policy

    policy = page_policy(["https://edge.example/v/path?x=1", "not a url"])
    assert "https://edge.example;" in policy and "/v/path" not in policy and "not a url" not in policy


def test_a_bug_answers_500_without_internals(api: TestClient, monkeypatch: Any) -> None:
    headers = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    state = api.app.state.marquee  # type: ignore[attr-defined]

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(state.catalog, "snapshot", property(broken))  # a fault injected on purpose
    monkeypatch.setattr(type(state.catalog), "snapshot", property(broken), raising=False)
    client = TestClient(api.app, raise_server_exceptions=False)
    response = client.get("/v1/titles", headers=headers)
    assert response.status_code == 500
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    assert response.json()["error"] == "InternalError" and response.json()["request_id"]


def test_the_api_server_does_not_let_uvicorn_believe_forwarded_headers() -> None:
    import inspect

    from marquee.commands import serve_api

    source = inspect.getsource(serve_api)
    assert source.count("proxy_headers=False") == 2  # both the single-process and the worker launch
