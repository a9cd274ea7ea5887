"""Typed dependencies shared by the routes: the service's state, settings, metrics and checked limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.services.jobs.manager import JobManager, JobsDisabledError
from app.services.observability import Metrics
from app.services.runtime import Runtime
from app.services.search import SearchService
from app.settings import Settings
from models.errors import InvalidRequestError


# Coroutines although they never await: FastAPI runs a plain `def` dependency in a worker
# thread, a hop that cost a cheap request more than its own work (see app/api/security.py).
async def get_runtime(request: Request) -> Runtime:
    """The service's state."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings_dependency(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_search_service(request: Request) -> SearchService:
    """The loaded search service, or a 503 until a model and gallery are loaded."""
    runtime: Runtime = request.app.state.runtime
    return runtime.require_search()


async def get_job_manager(request: Request) -> JobManager:
    """The training job manager, or a 503 when jobs are disabled."""
    jobs: JobManager | None = request.app.state.jobs
    if jobs is None:
        raise JobsDisabledError("training jobs are disabled on this server (AESEEK_JOBS_ENABLED=false)")
    return jobs


def within_max_k(k: int, settings: Settings) -> int:
    """`k` itself, or a 422 when it is over AESEEK_MAX_K (the one source of that limit; see app/api/openapi.py)."""
    if k > settings.max_k:
        raise InvalidRequestError(f"k={k} is over the limit of {settings.max_k} (AESEEK_MAX_K)")
    return k


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings_dependency)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SearchServiceDep = Annotated[SearchService, Depends(get_search_service)]
JobManagerDep = Annotated[JobManager, Depends(get_job_manager)]
