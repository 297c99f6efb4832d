"""Base classes of the public schemas."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """Request bodies refuse unknown fields (422), so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class PublicModel(BaseModel):
    """Response bodies, built from ORM rows or dataclasses."""

    model_config = ConfigDict(from_attributes=True)
