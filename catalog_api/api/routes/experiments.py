"""``/v1/experiments``: experiment administration (admin account or admin token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

__all__: list[Any] = ["router"]
