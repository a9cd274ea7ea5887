"""JobManager with AESEEK_RUN_TRAINER=false: an API replica that queues jobs for `aeseek worker` and never trains."""

import time
from pathlib import Path

from app.main import SUPERVISE_INTERVAL_S
from app.services.jobs.store import JobStore
from app.services.jobs.trainer_lock import TrainerLock
from tests.helpers import JOBS_AUTH, JOBS_KEY, TINY_CONV, serve, submit


def test_trainer_lock_has_one_holder_at_a_time(tmp_path: Path) -> None:
    first, second = TrainerLock(tmp_path), TrainerLock(tmp_path)
    assert first.try_acquire() and first.held
    assert not second.try_acquire() and not second.held
    first.release()
    assert second.try_acquire()
    second.release()


def test_a_replica_without_the_trainer_accepts_jobs_but_never_runs_one(workspace_dir: Path) -> None:
    store = JobStore(workspace_dir / "jobs")
    # A job the worker service (another container) runs right now, and one a stopped worker left.
    elsewhere = store.create("conv", TINY_CONV)
    elsewhere.state = "running"
    store.save(elsewhere)
    stopped = store.create("conv", TINY_CONV)
    stopped.state = "interrupted"
    store.save(stopped)

    with serve(workspace_dir, JOBS_AUTH, jobs_enabled=True, run_trainer=False, api_keys=JOBS_KEY) as client:
        job = submit(client, TINY_CONV)
        assert job["state"] == "queued"
        time.sleep(1.5 * SUPERVISE_INTERVAL_S)  # the supervisor ran: it would have taken a free trainer lock
        assert client.app.state.jobs.worker_pid is None  # type: ignore[attr-defined]
        lock = TrainerLock(store.directory)
        assert lock.try_acquire(), "the replica holds the trainer lock"
        lock.release()

        listed = {j["id"]: j["state"] for j in client.get("/api/v1/jobs").json()["data"]}
        assert listed == {job["id"]: "queued", elsewhere.id: "running", stopped.id: "interrupted"}
        assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 202
        assert store.cancel_flag(job["id"]).exists()  # the worker acts on it when it claims the job
        resumed = client.post(f"/api/v1/jobs/{stopped.id}/resume")
        assert resumed.status_code == 202 and resumed.json()["state"] == "queued"

    # Neither the replica's start nor its stop called the worker's running job an orphan.
    assert store.get(elsewhere.id).state == "running"  # type: ignore[union-attr]
