"""Schemas of profiles: create, update (partial), public."""

from __future__ import annotations

from pydantic import Field, model_validator

from catalog_api.schemas.common import PublicModel, RequestBody, SafeStr, StrictLevel, UtcDateTime
from core import rules

#: The highest maturity level a kids profile may have (older kids): ``core.rules`` decides it.
KIDS_MAX_LEVEL = rules.KIDS_MAX_LEVEL
#: Most onboarding titles one new profile may name.
MAX_LIKED_TITLES = 20


class ProfileCreate(RequestBody):
    """A new profile. Kids profiles default to level 1 and may not go above it."""

    name: SafeStr = Field(min_length=1, max_length=50)
    is_kids: bool = False
    maturity_level: StrictLevel | None = Field(default=None, description="0..3; default 3, or 1 for kids")
    language: str = Field(default="en", min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)?$")
    liked_titles: list[SafeStr] = Field(
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
    """Fields to change; omitted fields, and fields sent as ``null``, keep their value."""

    name: SafeStr | None = Field(default=None, min_length=1, max_length=50)
    is_kids: bool | None = None
    maturity_level: StrictLevel | None = None
    language: str | None = Field(default=None, min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)?$")

    @model_validator(mode="after")
    def _null_keeps(self) -> ProfileUpdate:
        # The schema documents null as allowed: it means "no change", exactly like an omitted field.
        for name in [n for n in self.model_fields_set if getattr(self, n) is None]:
            self.model_fields_set.discard(name)
        return self


class ProfilePublic(PublicModel):
    """A profile as the account owner sees it."""

    profile_id: str
    name: str
    is_kids: bool
    maturity_level: int
    language: str
    country: str
    created_at: UtcDateTime
