"""Erasing an account: database rows, lake rows and buffered exposures.

After ``erase_account`` nothing of the account is left in the API database or
the lake; the online feature store loses its profiles at the next
materialize, because the feature pipelines read the lake.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog_api.candidate_cache import TtlCache
from catalog_api.db.tables import AccountRow, ProfileRow, RevokedTokenRow, WatchEventRow
from catalog_api.services.exposures import ExposureLog
from core.lake import Lake

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureReport:
    """How many rows each store lost."""

    profiles: int
    watch_events: int
    lake_rows: dict[str, int]
    buffered_exposures: int


def erase_account(
    session: Session,
    lake: Lake,
    exposures: ExposureLog,
    account: AccountRow,
    *caches: TtlCache[Any],
) -> ErasureReport:
    """Delete the account and everything derived from it; commits the database part first.

    The database goes first so a lake failure cannot leave a live account
    behind; the lake deletion is idempotent and can be re-run.
    """
    profile_ids = set(session.scalars(select(ProfileRow.profile_id).where(ProfileRow.account_id == account.account_id)))
    events = 0
    if profile_ids:
        result = session.execute(delete(WatchEventRow).where(WatchEventRow.profile_id.in_(profile_ids)))
        events = int(getattr(result, "rowcount", 0) or 0)
        session.execute(delete(ProfileRow).where(ProfileRow.profile_id.in_(profile_ids)))
    session.execute(delete(RevokedTokenRow).where(RevokedTokenRow.account_id == account.account_id))
    session.execute(delete(AccountRow).where(AccountRow.account_id == account.account_id))
    session.commit()
    buffered = exposures.forget_profiles(profile_ids)
    for cache in caches:
        # Keys start with the profile id (``services.home``): no recommendation or page of them survives.
        cache.forget(lambda key: isinstance(key, tuple) and bool(key) and key[0] in profile_ids)
    # Every lake table holding rows about the account or its profiles (``TableSpec.subject_column``).
    lake_rows = lake.erase({"account_id": {account.account_id}, "profile_id": profile_ids})
    logger.info(
        "erased account %s: %d profiles, %d events, lake %s", account.account_id, len(profile_ids), events, lake_rows
    )
    return ErasureReport(len(profile_ids), events, lake_rows, buffered)
