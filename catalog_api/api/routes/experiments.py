"""``/v1/experiments``: experiment administration (an admin account or the admin token)."""

from __future__ import annotations

from fastapi import APIRouter, status
from starlette.concurrency import run_in_threadpool

from catalog_api.api.deps import AdminDep, StateDep
from catalog_api.schemas.common import RequestBody
from core.errors import ConflictError, NotFoundError
from experiments.spec import Experiment, Status

router = APIRouter(prefix="/v1/experiments", tags=["experiments"], dependencies=[AdminDep])


class StatusChange(RequestBody):
    """The new lifecycle status."""

    status: Status


@router.get("", response_model=list[Experiment])
async def list_experiments(state: StateDep) -> list[Experiment]:
    """Every definition in the store."""
    return await run_in_threadpool(state.experiments.store.list)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Experiment)
async def create_experiment(body: Experiment, state: StateDep) -> Experiment:
    """Add a definition (409 if the key exists or it overlaps a running experiment of its layer)."""

    def create() -> Experiment:
        try:
            state.experiments.store.get(body.key)
        except NotFoundError:
            return state.experiments.store.put(body)
        raise ConflictError(f"experiment {body.key!r} exists; change its status with PUT .../{body.key}/status")

    created = await run_in_threadpool(create)
    state.experiments.invalidate()
    return created


@router.get("/{key}", response_model=Experiment)
async def get_experiment(key: str, state: StateDep) -> Experiment:
    """One definition."""
    return await run_in_threadpool(state.experiments.store.get, key)


@router.put("/{key}/status", response_model=Experiment)
async def set_status(key: str, body: StatusChange, state: StateDep) -> Experiment:
    """Start (``running``), stop (``stopped``) or park (``draft``) an experiment."""
    updated = await run_in_threadpool(state.experiments.store.set_status, key, body.status)
    state.experiments.invalidate()
    return updated
