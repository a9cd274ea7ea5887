"""Training job records on disk: one JSON file per job, written atomically.

Ownership keeps two processes from writing the same file: the API process creates a
record (queued), re-queues a stopped one (resume) and marks orphans interrupted when no
worker runs; from the moment the worker claims a job, only the worker writes its record.
The API asks the worker to cancel by creating a flag file beside the record.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from models.storage import atomic_write_json

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
RESUMABLE: frozenset[str] = frozenset({"interrupted", "failed", "cancelled"})
INTERRUPTED_ERROR = "the worker stopped while this job ran; resume it to continue from its last epoch"


class JobProgress(BaseModel):
    """Where a running job stands."""

    phase: str = Field("queued", description="'train', or the pretraining phase (e.g. 'layer 2/3', 'RBM 1/4').")
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps_total: int = 0
    fraction: float = Field(0.0, ge=0, le=1, description="Share of the current phase done.")
    loss: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = Field(None, description="Seconds left in the current phase, estimated.")


class JobRecord(BaseModel):
    """Everything known about one training job."""

    id: str
    state: JobState
    variant: str
    config: dict[str, Any]
    created: float
    started: float | None = None
    finished: float | None = None
    progress: JobProgress = Field(default_factory=JobProgress)
    loss_curve: list[tuple[str, int, float]] = Field(
        default_factory=list, description="(phase, step, mean loss so far) samples, oldest first."
    )
    metrics: dict[str, Any] = Field(default_factory=dict)
    model_version: str | None = None
    error: str | None = None
    attempts: int = Field(0, description="How many times a worker started this job (resumes add one).")
    nproc: int = Field(1, ge=1, description="Processes the job trains across (1: the worker process alone).")


class JobStore:
    """The directory of job records."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, job_id: str) -> Path:
        """Where a job's record lives."""
        return self.directory / f"{job_id}.json"

    def cancel_flag(self, job_id: str) -> Path:
        """The file whose existence asks the worker to stop a job."""
        return self.directory / f"{job_id}.cancel"

    def create(self, variant: str, config: dict[str, Any], nproc: int = 1) -> JobRecord:
        """A new queued job."""
        record = JobRecord(
            id=uuid.uuid4().hex[:12], state="queued", variant=variant, config=config, created=time.time(), nproc=nproc
        )
        self.save(record)
        return record

    def save(self, record: JobRecord) -> None:
        """Write a record atomically."""
        atomic_write_json(self.path(record.id), record.model_dump(mode="json"))

    def get(self, job_id: str) -> JobRecord | None:
        """A record by id, or None (also for ids that are not plain hex, so no path tricks)."""
        if not job_id.isalnum():
            return None
        path = self.path(job_id)
        try:
            return JobRecord.model_validate(json.loads(path.read_text()))
        except (FileNotFoundError, ValueError):
            return None

    def all(self) -> list[JobRecord]:
        """Every readable record, newest first."""
        records = [self.get(path.stem) for path in self.directory.glob("*.json")]
        return sorted((r for r in records if r is not None), key=lambda r: r.created, reverse=True)

    def next_queued(self) -> JobRecord | None:
        """The oldest queued job."""
        queued = [record for record in self.all() if record.state == "queued"]
        return min(queued, key=lambda r: r.created) if queued else None

    def mark_orphans_interrupted(self) -> list[str]:
        """Running jobs with no worker behind them become interrupted; returns their ids."""
        orphans = []
        for record in self.all():
            if record.state == "running":
                record.state = "interrupted"
                record.error = INTERRUPTED_ERROR
                self.save(record)
                orphans.append(record.id)
        return orphans
