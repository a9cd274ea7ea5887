"""Prometheus metrics at `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import MetricsDep

router = APIRouter(tags=["observability"])


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def get_metrics(metrics: MetricsDep) -> PlainTextResponse:
    """Request counts and latency per route, search stage timings, gallery size, active model,
    job states and durations, in the Prometheus text format; with several server workers, the
    counts and timings of all of them."""
    return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
