"""Schemas of sign-up, tokens and the account."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from catalog_api.schemas.common import PublicModel, RequestBody, SafeStr, UtcDateTime

Plan = Literal["basic", "standard", "premium"]


class SignupRequest(RequestBody):
    """A new account: e-mail, password, country (ISO alpha-2) and plan."""

    email: SafeStr = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    password: SafeStr = Field(min_length=8, max_length=128, description="8 to 128 characters")
    country: str = Field(default="US", min_length=2, max_length=2, description="ISO-3166 alpha-2, e.g. US")
    plan: Plan = "standard"

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("country")
    @classmethod
    def _upper_country(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError(f"country must be two letters (ISO-3166 alpha-2, e.g. 'US'), got {value!r}")
        return value.upper()


class AccountPublic(PublicModel):
    """The account as its owner sees it."""

    account_id: str
    email: str
    country: str
    plan: str
    created_at: UtcDateTime


class SignupAccepted(PublicModel):
    """The one answer to every valid sign-up, whether or not the e-mail already had an account."""

    detail: str


class TokenPair(PublicModel):
    """OAuth2 bearer tokens."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class RefreshRequest(RequestBody):
    """A refresh token to exchange (it is revoked on use)."""

    refresh_token: SafeStr = Field(min_length=10, max_length=4096)


class LogoutRequest(RequestBody):
    """Optionally, the refresh token to revoke along with the access token."""

    refresh_token: SafeStr | None = Field(default=None, max_length=4096)
