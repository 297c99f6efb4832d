"""Schemas of profiles: create, update (partial), public."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from catalog_api.schemas.common import PublicModel, RequestBody
from core import rules

#: The highest maturity level a kids profile may have (older kids): ``core.rules`` decides it.
KIDS_MAX_LEVEL = rules.KIDS_MAX_LEVEL
#: Most onboarding titles one new profile may name.
MAX_LIKED_TITLES = 20


class ProfileCreate(RequestBody):
    """A new profile. Kids profiles default to level 1 and may not go above it."""

    name: str = Field(min_length=1, max_length=50)
    is_kids: bool = False
    maturity_level: int | None = Field(default=None, ge=0, le=3, description="0..3; default 3, or 1 for kids")
    language: str = Field(default="en", min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)?$")
    liked_titles: list[str] = Field(
        default_factory=list,
        max_length=MAX_LIKED_TITLES,
        description="onboarding: a few catalog titles the viewer likes; they count as watched history at once",
    )

    @model_validator(mode="after")
    def _kids_level(self) -> ProfileCreate:
        if self.maturity_level is None:
            self.maturity_level = KIDS_MAX_LEVEL if self.is_kids else 3
        if self.is_kids and self.maturity_level > KIDS_MAX_LEVEL:
            raise ValueError(f"a kids profile's maturity_level must be at most {KIDS_MAX_LEVEL}")
        return self


class ProfileUpdate(RequestBody):
    """Fields to change; omitted fields keep their value."""

    name: str | None = Field(default=None, min_length=1, max_length=50)
    is_kids: bool | None = None
    maturity_level: int | None = Field(default=None, ge=0, le=3)
    language: str | None = Field(default=None, min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)?$")


class ProfilePublic(PublicModel):
    """A profile as the account owner sees it."""

    profile_id: str
    name: str
    is_kids: bool
    maturity_level: int
    language: str
    country: str
    created_at: datetime
