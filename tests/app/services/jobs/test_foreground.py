"""`aeseek worker`, a real process: the one trainer for API replicas that run none (AESEEK_RUN_TRAINER=false)."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.services.jobs.store import JobStore
from tests.helpers import JOBS_AUTH, JOBS_KEY, TINY_CONV, WAIT_S, serve, submit, wait_for

TINY_BOOTSTRAP = {"channels": [8, 16, 32], "training": {"epochs": 1}}
LONG_JOB = {**TINY_CONV, "training": {"epochs": 200, "batch_size": 64}}
EXIT_S = 30  # an upper bound on a clean exit after SIGTERM, not a performance assertion


@contextmanager
def worker(root: Path, log: Path, **environment: str) -> Iterator[subprocess.Popen[bytes]]:
    """`aeseek worker` on the data directory `root` (no bootstrap unless asked), its output appended to `log`."""
    env = {**os.environ, "AESEEK_DATA_DIR": str(root), "AESEEK_MNIST_SOURCE": "idx", "AESEEK_BOOTSTRAP": "false"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"], env={**env, **environment}, stdout=output, stderr=output
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM the worker: it must exit 0 within EXIT_S."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=EXIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"aeseek worker still ran {EXIT_S} s after SIGTERM:\n{log.read_text()}")
    assert code == 0, log.read_text()


def replica(root: Path) -> TestClient:
    """An API replica over `root` that runs no trainer; use it in a `with` block."""
    return serve(root, JOBS_AUTH, jobs_enabled=True, run_trainer=False, api_keys=JOBS_KEY)


def until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds (WAIT_S at most)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {WAIT_S} s: {what}")


@pytest.mark.slow
def test_worker_bootstraps_then_runs_a_job_queued_by_a_replica(workspace_dir: Path, tmp_path: Path) -> None:
    store = JobStore(workspace_dir / "jobs")
    orphan = store.create("conv", TINY_CONV)  # a job a killed trainer left running
    orphan.state = "running"
    store.save(orphan)
    log = tmp_path / "worker.log"
    with replica(workspace_dir) as client:
        assert client.get("/api/v1/ready").status_code == 503  # no model yet: the worker trains the first one
        job = submit(client, TINY_CONV)
        bootstrap = {"AESEEK_BOOTSTRAP": "true", "AESEEK_BOOTSTRAP_CONFIG": json.dumps(TINY_BOOTSTRAP)}
        with worker(workspace_dir, log, **bootstrap) as process:
            assert wait_for(client, orphan.id, {"interrupted"})["error"].startswith("the worker stopped")
            done = wait_for(client, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", f"{done['error']}\n{log.read_text()}"
            assert done["progress"]["epoch"] == 2 and done["metrics"]["p_at_10"] > 0
            # The replica follows the activation the worker's first start made, and serves it.
            until(lambda: client.get("/api/v1/ready").status_code == 200, "the replica serves the first model")
            assert client.get("/api/v1/models/active").json()["version"] != done["model_version"]
            stop(process, log)


@pytest.mark.slow
def test_sigterm_interrupts_the_running_job_and_a_waiting_worker_takes_over(
    workspace_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with replica(workspace_dir) as client, worker(workspace_dir, log) as first:
        job = submit(client, LONG_JOB)
        wait_for(client, job["id"], {"running"}, lambda j: j["progress"]["epoch"] >= 1)
        with worker(workspace_dir, log) as second:  # waits: the first holds the trainer lock
            until(lambda: "waiting for it" in log.read_text(), "the second worker waits for the lock")
            stop(first, log)
            interrupted = wait_for(client, job["id"], {"interrupted"})
            assert interrupted["attempts"] == 1 and "resume" in interrupted["error"]
            assert client.post(f"/api/v1/jobs/{job['id']}/resume").status_code == 202
            # The second worker took the lock over and continues the job from its last saved epoch.
            epoch = interrupted["progress"]["epoch"]
            wait_for(client, job["id"], {"running"}, lambda j: j["attempts"] == 2 and j["progress"]["epoch"] > epoch)
            assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 202
            assert wait_for(client, job["id"], {"cancelled", "failed", "succeeded"})["state"] == "cancelled"
            stop(second, log)
