"""``/v1/profiles``: up to five profiles per account, reachable only by their account."""

from __future__ import annotations

from fastapi import APIRouter, status

from catalog_api.api.deps import CurrentAccount, OwnedProfile, SessionDep, StateDep
from catalog_api.schemas.profiles import ProfileCreate, ProfilePublic, ProfileUpdate
from catalog_api.services import profiles

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])


@router.get("", response_model=list[ProfilePublic])
def list_profiles(session: SessionDep, account: CurrentAccount) -> list[ProfilePublic]:
    """The account's profiles."""
    return [ProfilePublic.model_validate(p) for p in profiles.list_profiles(session, account.account_id)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProfilePublic)
def create_profile(body: ProfileCreate, session: SessionDep, account: CurrentAccount, state: StateDep) -> ProfilePublic:
    """Add a profile (409 beyond five); ``liked_titles`` count as watched history at once."""
    profile = profiles.create_profile(session, account, body, state.catalog.snapshot)
    session.commit()
    return ProfilePublic.model_validate(profile)


@router.get("/{profile_id}", response_model=ProfilePublic)
def get_profile(profile: OwnedProfile) -> ProfilePublic:
    """One profile."""
    return ProfilePublic.model_validate(profile)


@router.patch("/{profile_id}", response_model=ProfilePublic)
def update_profile(body: ProfileUpdate, profile: OwnedProfile, session: SessionDep) -> ProfilePublic:
    """Change name, kids flag, maturity level or language."""
    updated = profiles.update_profile(session, profile, body)
    session.commit()
    return ProfilePublic.model_validate(updated)


@router.delete("/{profile_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_profile(profile: OwnedProfile, session: SessionDep) -> None:
    """Delete the profile and its history."""
    profiles.delete_profile(session, profile)
    session.commit()
