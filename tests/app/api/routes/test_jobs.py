"""Training over HTTP: real jobs in the real worker process, on a few hundred MNIST images."""

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from models.data.mnist import MnistSplit
from tests.helpers import JOBS_AUTH, JOBS_KEY, TINY_CONV, chance_precision, serving_settings, submit, wait_for


def test_a_job_trains_evaluates_and_saves_a_model(
    trained_job: dict[str, Any], full_mnist: dict[str, MnistSplit]
) -> None:
    assert trained_job["state"] == "succeeded", trained_job["error"]
    assert trained_job["progress"]["fraction"] == 1.0 and trained_job["progress"]["epoch"] == 2
    assert trained_job["loss_curve"] and all(phase == "train" for phase, _, _ in trained_job["loss_curve"])
    # The job evaluated its model: it retrieves well above chance on the (small) protocol.
    assert trained_job["metrics"]["p_at_10"] > 2 * chance_precision(full_mnist)
    assert trained_job["metrics"]["reconstruction_mse"] > 0
    assert trained_job["model_version"] and trained_job["attempts"] == 1


def test_stacked_job_reports_its_layers(jobs_client: TestClient) -> None:
    body = {"variant": "stacked", "hidden": [32], "code_dim": 8, "layer_epochs": 1, "training": {"epochs": 1}}
    done = wait_for(jobs_client, submit(jobs_client, body)["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    phases = {phase for phase, _, _ in done["loss_curve"]}
    assert {"layer 1/2", "layer 2/2", "train"} <= phases
    # Greedy layers first, then one end-to-end epoch; each layer's loss fell within its epoch.
    assert len(done["metrics"]["history"]["epoch_losses"]) == 1
    for layer in ("layer 1/2", "layer 2/2"):
        losses = [loss for phase, _, loss in done["loss_curve"] if phase == layer]
        assert losses[-1] < losses[0], layer


def test_cancel_a_running_job(jobs_client: TestClient) -> None:
    long = {**TINY_CONV, "training": {"epochs": 200, "batch_size": 64}}
    job = submit(jobs_client, long)
    wait_for(jobs_client, job["id"], {"running"}, lambda j: j["progress"]["step"] > 0)
    assert jobs_client.delete(f"/api/v1/jobs/{job['id']}").status_code == 202
    cancelled = wait_for(jobs_client, job["id"], {"cancelled", "failed", "succeeded"})
    assert cancelled["state"] == "cancelled"
    again = jobs_client.delete(f"/api/v1/jobs/{job['id']}")
    assert again.status_code == 409 and "only queued or running" in again.json()["message"]


def test_unknown_job_is_404(jobs_client: TestClient) -> None:
    assert jobs_client.get("/api/v1/jobs/000000000000").status_code == 404
    assert jobs_client.post("/api/v1/jobs/../../etc/resume").status_code == 404


@pytest.mark.slow
def test_killed_worker_leaves_an_interrupted_job_that_resumes(jobs_client: TestClient) -> None:
    jobs = jobs_client.app.state.jobs  # type: ignore[attr-defined]
    body = {**TINY_CONV, "training": {"epochs": 40, "batch_size": 64}}
    job = submit(jobs_client, body)
    wait_for(jobs_client, job["id"], {"running"}, lambda j: j["progress"]["epoch"] >= 3)
    os.kill(jobs.worker_pid, signal.SIGKILL)  # no cleanup of any kind
    interrupted = wait_for(jobs_client, job["id"], {"interrupted"})
    assert "resume" in interrupted["error"]
    resumed = jobs_client.post(f"/api/v1/jobs/{job['id']}/resume")
    assert resumed.status_code == 202 and resumed.json()["state"] == "queued"
    done = wait_for(jobs_client, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert len(done["metrics"]["history"]["epoch_losses"]) == 40


def test_jobs_survive_a_restart(jobs_client: TestClient, jobs_root: Path, trained_job: dict[str, Any]) -> None:
    with TestClient(
        create_app(serving_settings(jobs_root, jobs_enabled=True, api_keys=JOBS_KEY)), headers=JOBS_AUTH
    ) as second:
        listed = second.get("/api/v1/jobs").json()
        ids = {job["id"]: job["state"] for job in listed["data"]}
        assert ids[trained_job["id"]] == "succeeded" and listed["count"] == len(ids)
