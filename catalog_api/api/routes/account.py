"""``/v1/account``: the caller's account, and its erasure."""

from __future__ import annotations

from fastapi import APIRouter, status

from catalog_api.api.deps import CurrentAccount, SessionDep, StateDep
from catalog_api.schemas.auth import AccountPublic
from catalog_api.services.privacy import erase_account

router = APIRouter(prefix="/v1/account", tags=["account"])


@router.get("", response_model=AccountPublic)
def get_account(account: CurrentAccount) -> AccountPublic:
    """The account of the token."""
    return AccountPublic.model_validate(account)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def delete_account(account: CurrentAccount, session: SessionDep, state: StateDep) -> None:
    """Erase the account, its profiles, watch history and exposures (database and lake)."""
    erase_account(session, state.lake, state.exposures, account, state.candidates, state.pages)
