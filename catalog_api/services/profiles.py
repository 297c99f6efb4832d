"""Profiles of an account: at most five, each reachable only by its own account."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog_api.db.tables import AccountRow, ProfileRow, WatchEventRow
from catalog_api.schemas.profiles import KIDS_MAX_LEVEL, ProfileCreate, ProfileUpdate
from catalog_api.services.catalog_cache import CatalogSnapshot, CatalogTitle
from core import rules
from core.errors import ConflictError, InvalidInputError, NotFoundError

MAX_PROFILES = 5


def list_profiles(session: Session, account_id: str) -> list[ProfileRow]:
    """The account's profiles, oldest first."""
    return list(
        session.scalars(select(ProfileRow).where(ProfileRow.account_id == account_id).order_by(ProfileRow.created_at))
    )


def get_owned_profile(session: Session, account_id: str, profile_id: str) -> ProfileRow:
    """The profile if it belongs to ``account_id``.

    Someone else's profile is reported exactly like a missing one (404), so ids
    of other accounts cannot be probed.
    """
    profile = session.get(ProfileRow, profile_id)
    if profile is None or profile.account_id != account_id:
        raise NotFoundError(f"no profile {profile_id!r} in this account; list yours at GET /v1/profiles")
    return profile


def create_profile(
    session: Session, account: AccountRow, request: ProfileCreate, snapshot: CatalogSnapshot | None = None
) -> ProfileRow:
    """Add a profile; the sixth is refused with 409.

    Onboarding titles (``request.liked_titles``) are stored as completed watches of
    the catalog titles themselves (device ``onboarding``), so they are history at once:
    the next page's viewer context carries them, and they are not recommended back.

    Raises:
        ConflictError: the account has five profiles already.
        InvalidInputError: a liked title is not in the catalog or not visible to this profile.
    """
    liked = _liked_titles(request, account.country, snapshot)
    count = session.scalar(select(func.count()).where(ProfileRow.account_id == account.account_id)) or 0
    if count >= MAX_PROFILES:
        raise ConflictError(f"an account has at most {MAX_PROFILES} profiles; delete one to add another")
    profile = ProfileRow(
        profile_id=uuid.uuid4().hex,
        account_id=account.account_id,
        name=request.name,
        is_kids=request.is_kids,
        maturity_level=int(request.maturity_level if request.maturity_level is not None else 3),
        language=request.language,
        country=account.country,
        created_at=datetime.now(UTC),
    )
    session.add(profile)
    session.flush()
    now = datetime.now(UTC)
    for i, title in enumerate(liked):
        duration = max(1, title.duration_s or 1)
        session.add(
            WatchEventRow(
                event_id=f"onboarding:{profile.profile_id}:{title.title_id}",
                profile_id=profile.profile_id,
                title_id=title.title_id,
                # The first named is the most recent (it seeds "Because You Watched").
                ts=now - timedelta(milliseconds=i),
                position_s=duration,
                duration_s=duration,
                device=ONBOARDING_DEVICE,
                country=profile.country,
            )
        )
    session.flush()
    return profile


#: The ``device`` of watches that stand for onboarding likes.
ONBOARDING_DEVICE = "onboarding"


def _liked_titles(request: ProfileCreate, country: str, snapshot: CatalogSnapshot | None) -> list[CatalogTitle]:
    """The catalog titles a new profile likes, checked: known, visible to it, each once."""
    if not request.liked_titles:
        return []
    if snapshot is None or not len(snapshot):
        raise InvalidInputError("liked_titles cannot be checked: the catalog is not loaded yet")
    level = rules.viewer_level(request.maturity_level, request.is_kids)
    titles: dict[str, CatalogTitle] = {}
    for title_id in request.liked_titles:
        title = snapshot.resolve(title_id)
        if title is None:
            raise InvalidInputError(f"liked_titles: no title {title_id!r} in the catalog; use ids from GET /v1/titles")
        if not title.visible_to(level, country):
            raise InvalidInputError(f"liked_titles: {title_id!r} is not available to this profile")
        titles.setdefault(title.title_id, title)
    return list(titles.values())


def update_profile(session: Session, profile: ProfileRow, request: ProfileUpdate) -> ProfileRow:
    """Apply the given fields; a kids profile stays at or below the kids level."""
    changes = request.model_dump(exclude_unset=True)
    if any(value is None for value in changes.values()):
        nulls = sorted(k for k, v in changes.items() if v is None)
        raise InvalidInputError(f"fields {nulls} may not be null; omit a field to keep its value")
    is_kids = changes.get("is_kids", profile.is_kids)
    level = changes.get("maturity_level", profile.maturity_level)
    if is_kids and level > KIDS_MAX_LEVEL:
        if "maturity_level" in changes:
            raise InvalidInputError(f"a kids profile's maturity_level must be at most {KIDS_MAX_LEVEL}, got {level}")
        changes["maturity_level"] = KIDS_MAX_LEVEL
    for key, value in changes.items():
        setattr(profile, key, value)
    session.flush()
    return profile


def delete_profile(session: Session, profile: ProfileRow) -> None:
    """Remove the profile and (by cascade) its watch events."""
    session.delete(profile)
    session.flush()
