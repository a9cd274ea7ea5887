"""The training worker as a service of its own (`aeseek worker`), in the foreground of its process.

API replicas with AESEEK_RUN_TRAINER=false queue jobs as files in the shared data directory;
this process runs them. It takes the same trainer lock a serving process would (waiting while
another process holds it), marks the jobs a dead trainer left running as interrupted, runs the
first-start bootstrap it is given, then runs queued jobs one at a time until asked to stop. A
job running when the stop comes ends interrupted, resumable from its last saved epoch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import torch

from app.services.jobs.store import JobStore
from app.services.jobs.trainer_lock import TrainerLock
from app.services.jobs.worker import run_jobs
from app.services.workspace import Workspace

logger = logging.getLogger("aeseek.worker")

LOCK_RETRY_S = 1.0


def wait_for_trainer_lock(lock: TrainerLock, stop: threading.Event, retry_s: float = LOCK_RETRY_S) -> bool:
    """Take the trainer lock, waiting while another process holds it; False if `stop` was set first."""
    if lock.try_acquire():
        return True
    logger.info("another process holds the trainer lock %s: waiting for it", lock.path)
    while not stop.wait(retry_s):
        if lock.try_acquire():
            logger.info("took the trainer lock")
            return True
    return False


def run_foreground_worker(
    workspace: Workspace,
    threads: int,
    stop: threading.Event,
    bootstrap: Callable[[], None] = lambda: None,
    poll_s: float = 0.3,
) -> None:
    """Be the trainer of `workspace` until `stop` is set: lock, orphans, bootstrap, then queued jobs."""
    torch.set_num_threads(threads)
    store = JobStore(workspace.root / "jobs")
    lock = TrainerLock(store.directory)
    if not wait_for_trainer_lock(lock, stop):
        return
    logger.info("the trainer of %s (trainer lock taken)", workspace.root)
    try:
        for job_id in store.mark_orphans_interrupted():
            logger.warning("job %s was running when its trainer stopped: marked interrupted", job_id)
        bootstrap()
        run_jobs(workspace, store, stop.is_set, poll_s)
        logger.info("training worker stopping")
    finally:
        store.mark_orphans_interrupted()  # we are the trainer: nothing runs once we return
        lock.release()
