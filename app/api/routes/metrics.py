"""Prometheus metrics at `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import MetricsDep, RuntimeDep

router = APIRouter(tags=["observability"])


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def get_metrics(runtime: RuntimeDep, metrics: MetricsDep) -> PlainTextResponse:
    """Request counts and latency per route, search stage timings, gallery size, active model,
    job states and durations, in the Prometheus text format."""
    search = runtime.search
    if search is not None:
        snapshot = search.snapshot
        metrics.set_active(snapshot.record.version, snapshot.record.variant, len(snapshot.gallery))
    return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
