"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RuntimeDep
from app.api.errors import ERROR_RESPONSES
from app.api.schemas import HealthResponse, ModelRef, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, summary="Liveness probe")
async def get_health() -> HealthResponse:
    """Answers as long as the process serves HTTP, loaded or not."""
    return HealthResponse(status="ok")


@router.get("/ready", response_model=ReadyResponse, responses={503: ERROR_RESPONSES[503]}, summary="Readiness probe")
async def get_ready(runtime: RuntimeDep) -> ReadyResponse:
    """200 once a model and its gallery are loaded and searches can be answered, 503 before."""
    snapshot = runtime.require_search().snapshot
    return ReadyResponse(
        status="ready",
        model=ModelRef.of(snapshot.record),
        gallery_size=len(snapshot.gallery),
    )
