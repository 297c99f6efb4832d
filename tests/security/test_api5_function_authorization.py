"""OWASP API5:2023 Broken Function Level Authorization: administration needs an admin."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.api.support import signup_and_login


def test_an_ordinary_account_cannot_administer_experiments(api: TestClient) -> None:
    headers = signup_and_login(api, f"{uuid.uuid4().hex}@example.com")
    assert api.get("/v1/experiments", headers=headers).status_code == 403
    assert api.get("/v1/experiments").status_code == 401
    change = api.post("/v1/experiments/anything/status", json={"status": "running"}, headers=headers)
    assert change.status_code in (403, 404, 405) and change.status_code != 200
