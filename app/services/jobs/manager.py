"""The API side of training jobs: submit, cancel, resume, and keep one worker process alive."""

from __future__ import annotations

import logging
import multiprocessing
import os
from multiprocessing.process import BaseProcess
from pathlib import Path

from app.services.jobs.store import FINISHED, RESUMABLE, JobRecord, JobStore
from app.services.jobs.trainer_lock import TrainerLock
from app.services.jobs.worker import run_worker
from app.services.retention import size_of
from app.settings import Settings
from models.base import AutoencoderConfig
from models.errors import AeseekError, ConflictError, DiskBudgetError, ErrorCode, InvalidRequestError, NotFoundError
from models.registry import check_size

logger = logging.getLogger("aeseek.jobs")


class JobsDisabledError(AeseekError):
    """This server runs no training worker (AESEEK_JOBS_ENABLED=false)."""

    code = ErrorCode.JOBS_DISABLED


class QueueFullError(AeseekError):
    """Too many jobs wait already."""

    code = ErrorCode.QUEUE_FULL


class JobManager:
    """Owns the job store from the API process and supervises the worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore(Path(settings.data_dir) / "jobs")
        self._process: BaseProcess | None = None
        self._lock = TrainerLock(self.store.directory)

    def start(self) -> None:
        """Run the training worker, if this process may (AESEEK_RUN_TRAINER) and no other process of
        this data directory runs it.

        With several serving workers, the one holding the trainer lock runs the one trainer; the
        others still take, list, cancel and resume jobs (records are files), and take the lock
        over when its holder dies (see `supervise`). With AESEEK_RUN_TRAINER=false (API replicas
        beside an `aeseek worker` service) this process never runs or takes over the trainer.
        """
        if not self.settings.run_trainer:
            logger.info("this process runs no trainer (AESEEK_RUN_TRAINER=false): `aeseek worker` runs the jobs")
            return
        if not self._lock.try_acquire():
            logger.info("another process runs the training worker")
            return
        for job_id in self.store.mark_orphans_interrupted():
            logger.warning("job %s was running when the service stopped: marked interrupted", job_id)
        self._spawn()

    def _spawn(self) -> None:
        # spawn, not fork: the worker must not inherit the server's threads and sockets.
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(
            target=run_worker,
            args=(str(self.settings.data_dir), self.settings.mnist_source, self.settings.train_threads),
            name="aeseek-trainer",
            daemon=True,
        )
        self._process.start()
        logger.info("training worker started (pid %s)", self._process.pid)

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id, while one has been started."""
        return self._process.pid if self._process is not None else None

    def supervise(self) -> None:
        """Restart a worker that died (killed, out of memory); its running job becomes interrupted.
        A process without the trainer lock tries to take it (its holder may have died), unless
        AESEEK_RUN_TRAINER is off."""
        if not self.settings.run_trainer:
            return
        if not self._lock.held:
            if self._lock.try_acquire():
                self.store.mark_orphans_interrupted()
                self._spawn()
            return
        if self._process is None or self._process.is_alive():
            return
        logger.error("training worker exited with %s; restarting it", self._process.exitcode)
        self.store.mark_orphans_interrupted()
        self._spawn()

    def stop(self) -> None:
        """Stop the worker; a job it was running becomes interrupted (resumable)."""
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None
        if self._lock.held:  # only the trainer's owner may call its jobs orphans
            self.store.mark_orphans_interrupted()
            self._lock.release()

    def submit(self, config: AutoencoderConfig, nproc: int = 1) -> JobRecord:
        """Queue a training job (across `nproc` processes), unless the queue is full."""
        most = self.settings.max_train_processes or os.cpu_count() or 1
        if not 1 <= nproc <= most:
            raise InvalidRequestError(
                f"nproc is {nproc}; training jobs on this server run across 1 to {most} processes "
                "(AESEEK_MAX_TRAIN_PROCESSES; 0 is one per CPU core)"
            )
        waiting = sum(1 for record in self.store.all() if record.state == "queued")
        if waiting >= self.settings.max_queued_jobs:
            raise QueueFullError(
                f"{waiting} jobs are already queued; the limit is {self.settings.max_queued_jobs} "
                "(AESEEK_MAX_QUEUED_JOBS). Wait for one to finish or cancel one.",
            )
        parameters = check_size(config)  # too large for the machine: refused now, not when it runs out of memory
        budget = self.settings.disk_budget_bytes
        # Weights and a resumable state (weights, Adam's two moments): about 16 bytes a parameter.
        if budget and size_of(Path(self.settings.data_dir)) + 16 * parameters > budget:
            raise DiskBudgetError(
                f"training this model would take the data directory past its budget of {budget:,} bytes "
                "(AESEEK_DISK_BUDGET_BYTES); delete models or run `aeseek gc`"
            )
        return self.store.create(config.variant, config.model_dump(mode="json"), nproc)

    def get(self, job_id: str) -> JobRecord:
        """A job by id, or a 404."""
        record = self.store.get(job_id)
        if record is None:
            raise NotFoundError(f"no job with id {job_id!r}")
        return record

    def cancel(self, job_id: str) -> JobRecord:
        """Ask the worker to stop a queued or running job."""
        record = self.get(job_id)
        if record.state in FINISHED or record.state == "interrupted":
            raise ConflictError(f"job {job_id} is {record.state}; only queued or running jobs can be cancelled")
        self.store.cancel_flag(job_id).touch()
        return record

    def resume(self, job_id: str) -> JobRecord:
        """Queue a stopped job again; it continues from its last saved epoch."""
        record = self.get(job_id)
        if record.state not in RESUMABLE:
            raise ConflictError(
                f"job {job_id} is {record.state}; only {', '.join(sorted(RESUMABLE))} jobs can be resumed"
            )
        self.store.cancel_flag(job_id).unlink(missing_ok=True)
        record.state, record.error, record.finished = "queued", None, None
        self.store.save(record)
        return record
