"""Erasure: DELETE /v1/account leaves nothing of the account in the database or the lake."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy import text

from catalog_api.app import export_events_now
from core.lake import Lake

from .support import make_profile, signup_and_login, watch


def test_deleting_the_account_erases_everything_of_it(client: TestClient) -> None:
    gone = signup_and_login(client, "gone@example.com")
    kept = signup_and_login(client, "kept@example.com")
    account_id = client.get("/v1/account", headers=gone).json()["account_id"]
    gone_profiles = [make_profile(client, gone, n)["profile_id"] for n in ("A", "B")]
    kept_profile = make_profile(client, kept, "K")["profile_id"]
    for profile in gone_profiles:
        watch(client, gone, profile, "m_space", 0.5)
        client.get(f"/v1/profiles/{profile}/home", headers=gone)  # exposures
    watch(client, kept, kept_profile, "m_space", 0.5)
    client.get(f"/v1/profiles/{kept_profile}/home", headers=kept)
    state = client.app.state.marquee  # type: ignore[attr-defined]
    lake: Lake = state.lake
    export_events_now(state)
    state.exposures.flush()
    client.get(f"/v1/profiles/{gone_profiles[0]}/home", headers=gone)  # one more page still in the buffer
    # The feature pipelines' copies of the account and profiles (as the ingest writes them).
    lake.write("accounts", pd.DataFrame({"account_id": [account_id, "other"], "country": ["US", "US"]}))
    lake.write(
        "profiles",
        pd.DataFrame(
            {"profile_id": [*gone_profiles, kept_profile], "maturity_level": [3, 3, 3], "is_kids": [False] * 3}
        ),
    )
    # Model answers the candidate cache holds for them (the model server is down here, so put them by hand).
    for profile in (*gone_profiles, kept_profile):
        state.candidates.put((profile, "champion", 3, "US", None, ()), f"picks of {profile}")
    assert client.delete("/v1/account", headers=gone).status_code == 204
    assert all(state.candidates.get((p, "champion", 3, "US", None, ())) is None for p in gone_profiles)
    assert state.candidates.get((kept_profile, "champion", 3, "US", None, ())) == f"picks of {kept_profile}"

    ids = {account_id, *gone_profiles}
    with state.engine.connect() as connection:
        for table, column in (("accounts", "account_id"), ("profiles", "profile_id"), ("watch_events", "profile_id")):
            values = set(connection.execute(text(f"SELECT {column} FROM {table}")).scalars())
            assert not values & ids, table
        assert not set(connection.execute(text("SELECT account_id FROM profiles")).scalars()) & ids
        assert not set(connection.execute(text("SELECT account_id FROM revoked_tokens")).scalars()) & ids
    for table, column in (
        ("accounts", "account_id"),
        ("profiles", "profile_id"),
        ("watch_events", "profile_id"),
        ("exposures", "profile_id"),
    ):
        assert not set(lake.read(table)[column]) & ids, table
    assert not {e.profile_id for e in state.exposures.pending()} & ids
    journals = "".join(path.read_text() for path in state.settings.workspace.home.glob("journal/exposures-*"))
    assert not any(profile_id in journals for profile_id in ids), "the exposure journal forgot them too"
    # The other account is untouched, and the erased token no longer works.
    assert kept_profile in set(lake.read("watch_events")["profile_id"])
    assert kept_profile in set(lake.read("exposures")["profile_id"])
    assert client.get(f"/v1/profiles/{kept_profile}/history", headers=kept).json()["items"]
    assert client.get("/v1/account", headers=gone).status_code == 401
    login = client.post("/v1/auth/token", data={"username": "gone@example.com", "password": "correct horse 1"})
    assert login.status_code == 401
