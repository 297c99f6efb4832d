"""OWASP API9:2023 Improper Inventory Management: the OpenAPI document tells the real status codes."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_every_v1_route_documents_its_error_answers(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert spec["paths"], "no routes documented"
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"422", "503"} <= codes, (method, path, codes)
            if operation.get("security"):
                assert {"401", "429"} <= codes, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path, codes)
            detail = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert detail["$ref"].endswith("/ValidationBody"), (method, path)
    body = spec["components"]["schemas"]["ValidationBody"]["properties"]["detail"]
    assert body["type"] == "array"  # a 422's detail is a list, never a string
