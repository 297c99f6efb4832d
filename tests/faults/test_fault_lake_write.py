"""The lake refuses writes (disk full / read-only) during export: the export retries, nothing is lost.

The process runs as root here, where ``chmod`` does not stop a write and no
small filesystem can be mounted, so the fault is injected at the write boundary
(``Lake.write`` raises ``OSError(ENOSPC)`` / ``EROFS``): the one mock the suite
allows, labelled as such. The previous table stays readable throughout.
"""

from __future__ import annotations

import errno
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog_api.app import create_app, export_events_now
from catalog_api.options import ApiOptions
from core.lake import Lake
from core.settings import Settings
from tests.api.support import fill_lake, make_profile, signup_and_login, watch


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_export_retries_when_the_lake_refuses_writes(settings: Settings, monkeypatch: Any, code: int) -> None:
    fill_lake(settings)
    with TestClient(create_app(settings, ApiOptions(row_size=6))) as client:
        state = client.app.state.marquee  # type: ignore[attr-defined]
        headers = signup_and_login(client, "lake@example.com")
        profile = make_profile(client, headers, "P")["profile_id"]
        assert watch(client, headers, profile, "m_space", 0.5, event_id="before").status_code == 201
        assert export_events_now(state) == 1
        real_write = Lake.write

        def refuse(self: Lake, name: str, *args: Any, **kwargs: Any) -> int:  # FAULT INJECTION (mock)
            raise OSError(code, "injected: the lake refuses writes")

        monkeypatch.setattr(Lake, "write", refuse)
        for i in range(3):
            assert watch(client, headers, profile, "m_laugh", 0.1 * (i + 1), event_id=f"during-{i}").status_code == 201
        assert export_events_now(state) == 0  # failed, logged, mark not moved
        assert list(state.lake.read("watch_events")["event_id"]) == ["before"]  # previous table readable
        monkeypatch.setattr(Lake, "write", real_write)
        assert export_events_now(state) == 3  # the retry exports what waited
        ids = list(state.lake.read("watch_events")["event_id"])
        assert sorted(ids) == ["before", "during-0", "during-1", "during-2"]
