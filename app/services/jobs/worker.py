"""The training worker: a separate process that runs queued jobs one at a time.

It trains with `Workspace.train` under a run directory per job (so an interrupted job
resumes from its last saved epoch), reports progress into the job record at most twice a
second, evaluates the finished model, and stops a job when its cancel flag appears.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch

from app.services.distributed import train_model
from app.services.evaluation import evaluate_and_record
from app.services.jobs.store import INTERRUPTED_ERROR, JobProgress, JobRecord, JobStore
from app.services.workspace import Workspace
from models.data.mnist import Source
from models.progress import Progress, TrainingStopped
from models.registry import saved_config_from_dict

logger = logging.getLogger("aeseek.worker")

REPORT_INTERVAL_S = 0.5
CURVE_POINTS = 400


class ProgressReporter:
    """Writes a job's progress and loss curve into its record, throttled."""

    def __init__(self, store: JobStore, record: JobRecord) -> None:
        self.store = store
        self.record = record
        self.last_write = 0.0
        self.curve_every = 1

    def __call__(self, progress: Progress) -> None:
        if progress.step % self.curve_every == 0:
            self.record.loss_curve.append((progress.phase, progress.step, round(progress.loss, 6)))
            if len(self.record.loss_curve) > CURVE_POINTS:  # keep the curve short: every other point
                self.record.loss_curve = self.record.loss_curve[::2]
                self.curve_every *= 2
        now = time.monotonic()
        if now - self.last_write < REPORT_INTERVAL_S and progress.step != progress.steps_total:
            return
        self.last_write = now
        self.record.progress = JobProgress(
            phase=progress.phase,
            epoch=progress.epoch,
            epochs=progress.epochs,
            step=progress.step,
            steps_total=progress.steps_total,
            fraction=min(progress.fraction, 1.0),
            loss=progress.loss,
            images_per_s=progress.images_per_s,
            eta_s=progress.eta_s,
        )
        self.store.save(self.record)

    def phase(self, name: str) -> None:
        """Announce a phase without steps (e.g. evaluation)."""
        self.record.progress = self.record.progress.model_copy(update={"phase": name, "eta_s": None})
        self.store.save(self.record)


ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[\w.@+-]+/)*[\w.@+-]+")


def public_error(error: Exception, data_dir: Path) -> str:
    """What a job record may tell anyone who can read it: the error without the server's paths."""
    roots = {str(data_dir), str(data_dir.resolve())}

    def hide(match: re.Match[str]) -> str:
        path = match.group()
        root = next((root for root in roots if path == root or path.startswith(root + "/")), None)
        return "<path>" if root is None else "<data>" + path[len(root) :]  # inside the data directory: relative

    return f"{type(error).__name__}: {ABSOLUTE_PATH.sub(hide, str(error))}"


_PARENT = os.getppid()


def orphaned() -> bool:
    """Whether the serving process that started this worker is gone (its parent changed)."""
    return os.getppid() != _PARENT


def run_job(
    workspace: Workspace, store: JobStore, record: JobRecord, stopping: Callable[[], bool] = orphaned
) -> JobRecord:
    """Run one claimed job to its end state; when `stopping()` turns true it ends interrupted (resumable)."""
    flag = store.cancel_flag(record.id)
    if flag.exists():
        record.state, record.finished = "cancelled", time.time()
        flag.unlink(missing_ok=True)
        store.save(record)
        return record
    record.state, record.started, record.error = "running", time.time(), None
    record.attempts += 1
    store.save(record)
    reporter = ProgressReporter(store, record)
    try:
        config = saved_config_from_dict(record.config)  # the config as it was queued
        model = train_model(
            workspace,
            config,
            record.nproc,
            on_progress=reporter,
            run_name=f"job-{record.id}",
            should_stop=lambda: flag.exists() or stopping(),
            threads_per_process=torch.get_num_threads(),  # AESEEK_TRAIN_THREADS in each process
        )
        reporter.phase("evaluating")
        rows = evaluate_and_record(workspace, model.version)
        record.metrics = {**rows[0].as_dict(), "history": model.history}
        record.model_version = model.version
        record.state = "succeeded"
    except TrainingStopped:
        if stopping():  # the worker stops (its serving process is gone, or SIGTERM): resumable
            record.state, record.error = "interrupted", INTERRUPTED_ERROR
        else:
            record.state = "cancelled"
            flag.unlink(missing_ok=True)
    except Exception as error:  # a failed job must not take the worker down
        logger.exception("job %s failed", record.id)  # the whole story, for operators
        record.state, record.error = "failed", public_error(error, workspace.root)
    record.finished = time.time()
    store.save(record)
    return record


def run_jobs(workspace: Workspace, store: JobStore, stopping: Callable[[], bool], poll_s: float = 0.3) -> None:
    """Run queued jobs one at a time, oldest first, until `stopping()` turns true."""
    logger.info("training worker ready (%d threads)", torch.get_num_threads())
    while not stopping():
        record = store.next_queued()
        if record is None:
            time.sleep(poll_s)
            continue
        logger.info("job %s: training %s", record.id, record.variant)
        finished = run_job(workspace, store, record, stopping)
        logger.info("job %s: %s", record.id, finished.state)


def run_worker(data_dir: str, mnist_source: Source, threads: int, poll_s: float = 0.3) -> None:
    """Process entry point (spawned by a serving process): run jobs until that process is gone."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(threads)
    global _PARENT
    _PARENT = os.getppid()
    run_jobs(Workspace(Path(data_dir), mnist_source), JobStore(Path(data_dir) / "jobs"), orphaned, poll_s)
    # The serving process that ran us is gone; another one takes over.
    logger.warning("the serving process that started this worker is gone: stopping")
