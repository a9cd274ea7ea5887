"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.jobs.manager import JobManager
from app.runtime import Runtime
from app.search_service import SearchService
from app.settings import Settings


# Coroutines although they never await: FastAPI runs a plain `def` dependency in a worker
# thread, a hop that cost a cheap request more than its own work (see app/security.py).
async def get_runtime(request: Request) -> Runtime:
    """The service's state."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings_dependency(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_search_service(request: Request) -> SearchService:
    """The loaded search service, or a 503 until a model and gallery are loaded."""
    runtime: Runtime = request.app.state.runtime
    return runtime.require_search()


async def get_job_manager(request: Request) -> JobManager:
    """The training job manager, or a 503 when jobs are disabled."""
    runtime: Runtime = request.app.state.runtime
    return runtime.require_jobs()


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings_dependency)]
SearchServiceDep = Annotated[SearchService, Depends(get_search_service)]
JobManagerDep = Annotated[JobManager, Depends(get_job_manager)]
