"""Schemathesis against the started API (a real uvicorn server on a free port).

Every operation of the OpenAPI document gets generated requests, valid and
invalid, with a signed-in account's token; every answer must be below 500
and conform to what the document says: status code, content type, headers and
body schema. Examples per operation are bounded to keep the module near a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog_api.app import create_app
from catalog_api.options import ApiOptions
from core.settings import Settings

from .support import ThreadedServer, fill_lake, free_port

pytestmark = pytest.mark.integration

#: Generated requests per operation.
EXAMPLES = 25

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def started_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home: Path = tmp_path_factory.mktemp("schemathesis") / "ws"
    base = Settings(home=home, serving_url=f"http://127.0.0.1:{free_port()}")
    base.workspace.ensure()
    fill_lake(base)
    options = ApiOptions(row_size=6, account_limit=10**6, client_limit=10**6, login_limit=10**6)
    with ThreadedServer(create_app(base, options)) as server:
        email, password = "schemathesis@example.com", "correct horse 1"
        assert (
            httpx.post(f"{server.url}/v1/auth/signup", json={"email": email, "password": password}).status_code == 201
        )
        token = httpx.post(f"{server.url}/v1/auth/token", data={"username": email, "password": password}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        assert httpx.post(f"{server.url}/v1/profiles", json={"name": "P"}, headers=headers).status_code == 201
        yield server.url, headers


def test_api_conforms_to_its_document(started_api: tuple[str, dict[str, str]]) -> None:
    url, headers = started_api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    cases = 0

    def check(operation: Any) -> None:
        public = operation.path in ("/v1/auth/logout", "/v1/account") and operation.method.upper() in ("POST", "DELETE")
        sent = {} if public else headers  # keep the shared token alive: these run unauthenticated (401 documented)
        label = f"{operation.method.upper()} {operation.path}"

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal cases
            cases += 1
            try:
                case.call_and_validate(base_url=url, headers=sent, checks=CHECKS)
            except Exception as failure:  # collect every operation's failures, then fail once
                failures.append(f"{label}: {str(failure)[:400]}")

        run()

    for result in schema.get_all_operations():
        check(result.ok())
    assert cases > 200, cases  # every operation was exercised
    by_operation: dict[str, str] = {}
    for failure in failures:
        by_operation.setdefault(failure.split(":")[0], failure)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(by_operation.values())
