"""Maturity rules where a request names no profile, and for a profile's history.

The rule every surface applies (``CatalogTitle.visible_to``) needs a profile.
Two places had none to judge by:

* Routes called without ``profile_id`` (title list, title detail) used the
  account, which has no maturity level: they showed every title. They now
  judge by the account's *most restricted* profile, so a kids device that omits
  the profile still sees only kids titles; an adult passes its ``profile_id``.
* A profile's history was listed as stored, so a profile switched to kids kept
  listing the mature titles it watched as an adult profile.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog_api.db.tables import ProfileRow
from catalog_api.services.catalog_cache import CatalogTitle
from core import rules
from core.domain import MaturityLevel

#: The level of a profile that may see everything (``core.domain.MaturityLevel.ADULTS``).
ADULT_LEVEL = int(MaturityLevel.ADULTS)


def strictest_profile(session: Session, account_id: str) -> ProfileRow | None:
    """The account's profile with the lowest maturity level (kids first), or None without profiles."""
    return session.scalars(
        select(ProfileRow)
        .where(ProfileRow.account_id == account_id)
        .order_by(ProfileRow.maturity_level, ProfileRow.is_kids.desc(), ProfileRow.created_at)
        .limit(1)
    ).first()


def history_visible(title: CatalogTitle | None, maturity_level: int) -> bool:
    """Whether a history entry may be listed to a profile of ``maturity_level`` (unknown titles: adults only)."""
    if title is None:
        return maturity_level >= ADULT_LEVEL
    return rules.level_allows(title.maturity_level, maturity_level)
