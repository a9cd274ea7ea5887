"""Training jobs: list, inspect, cancel, resume."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from app.api.deps import JobManagerDep
from app.api.errors import ERROR_RESPONSES
from app.api.params import JobId
from app.api.security import WRITE_ROUTE
from app.rendering.plots import curves_png
from app.services.jobs.store import JobRecord

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobList(BaseModel):
    """Jobs, newest first."""

    data: list[JobRecord]
    count: int


@router.get("", response_model=JobList, summary="List training jobs")
def list_jobs(jobs: JobManagerDep) -> JobList:
    """Every job the server knows, newest first, including finished ones from earlier runs."""
    records = jobs.store.all()
    return JobList(data=records, count=len(records))


@router.get("/{job_id}", response_model=JobRecord, responses=ERROR_RESPONSES, summary="Get a training job")
def get_job(job_id: JobId, jobs: JobManagerDep) -> JobRecord:
    """State, progress (phase, epoch, step, fraction, ETA), loss curve, metrics and error of one job."""
    return jobs.get(job_id)


@router.delete(
    "/{job_id}",
    **WRITE_ROUTE,
    status_code=202,
    response_model=JobRecord,
    responses=ERROR_RESPONSES,
    summary="Cancel a job",
)
def cancel_job(job_id: JobId, jobs: JobManagerDep) -> JobRecord:
    """Ask the worker to stop a queued or running job; it becomes `cancelled` within a step."""
    return jobs.cancel(job_id)


@router.post(
    "/{job_id}/resume",
    **WRITE_ROUTE,
    status_code=202,
    response_model=JobRecord,
    responses=ERROR_RESPONSES,
    summary="Resume a job",
)
def resume_job(job_id: JobId, jobs: JobManagerDep) -> JobRecord:
    """Queue an interrupted, failed or cancelled job again; it continues from its last saved epoch."""
    return jobs.resume(job_id)


@router.get(
    "/{job_id}/loss.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The loss curve so far."}, **ERROR_RESPONSES},
    summary="Plot a job's loss curve",
)
def get_job_loss_curve(job_id: JobId, jobs: JobManagerDep) -> Response:
    """The mean loss so far against the step, one line per phase, as PNG."""
    record = jobs.get(job_id)
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for phase, step, loss in record.loss_curve:
        xs, ys = curves.setdefault(phase, ([], []))
        xs.append(step)
        ys.append(loss)
    return Response(curves_png(curves, f"job {job_id} ({record.variant})", "step"), media_type="image/png")
