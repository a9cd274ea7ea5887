"""Training over HTTP: real jobs in the real worker process, on a few hundred MNIST images."""

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers import JOBS_AUTH, JOBS_KEY, TINY_CONV, serving_settings, wait_for


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variant": "fancy"}, "variant"),
        ({"variant": "l2", "l2_lambda": -1}, "l2_lambda"),
        ({"variant": "conv", "code_dim": 0}, "code_dim"),
        ({"variant": "conv", "colour": "red"}, "colour"),
        ({"variant": "vae", "training": {"epochs": 0}}, "epochs"),
        ({}, "variant"),
        # Sizes that would not fit the machine (one LSTM config once needed ~16 GB per batch).
        ({"variant": "lstm", "hidden_size": 4096}, "hidden_size"),
        ({"variant": "lstm", "sequence": "moving_mnist", "frames": 50}, "frames"),
        ({"variant": "multilayer", "hidden": [512] * 7}, "hidden"),
        ({"variant": "multilayer", "hidden": [100_000]}, "hidden"),
        ({"variant": "conv", "channels": [32, 64, 4096]}, "channels"),
        ({"variant": "conv", "training": {"batch_size": 8192}}, "batch_size"),
        ({"variant": "conv", "training": {"epochs": 1000}}, "epochs"),
        ({"variant": "multilayer", "hidden": [4096] * 6, "code_dim": 4096}, "parameters"),
    ],
)
def test_bad_configs_are_422_naming_the_field(jobs_client: TestClient, body: dict[str, Any], field: str) -> None:
    response = jobs_client.post("/api/v1/train", json=body)
    assert response.status_code == 422
    assert field in response.json()["message"]


def test_malformed_json_is_422(jobs_client: TestClient) -> None:
    response = jobs_client.post("/api/v1/train", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


def test_queue_limit(jobs_root: Path) -> None:
    settings = serving_settings(jobs_root, jobs_enabled=True, api_keys=JOBS_KEY).model_copy(
        update={"max_queued_jobs": 1, "jobs_enabled": True}
    )
    with TestClient(create_app(settings), headers=JOBS_AUTH) as limited:
        long = {**TINY_CONV, "training": {"epochs": 200}}
        first, second, third = (limited.post("/api/v1/train", json=long) for _ in range(3))
        statuses = [first.status_code, second.status_code, third.status_code]
        assert 429 in statuses and statuses[0] == 202
        for response in (first, second, third):
            if response.status_code == 202:
                limited.delete(f"/api/v1/jobs/{response.json()['id']}")


@pytest.mark.parametrize(
    ("nproc", "message"),
    [("0", "nproc"), ("two", "nproc"), (str((os.cpu_count() or 1) + 1), "AESEEK_MAX_TRAIN_PROCESSES")],
)
def test_nproc_out_of_bounds_is_422(jobs_client: TestClient, nproc: str, message: str) -> None:
    response = jobs_client.post(f"/api/v1/train?nproc={nproc}", json=TINY_CONV)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert message in response.json()["message"]


@pytest.mark.slow
def test_a_job_trains_across_two_processes(jobs_client: TestClient) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("AESEEK_MAX_TRAIN_PROCESSES defaults to the cores: this machine has one")
    response = jobs_client.post("/api/v1/train?nproc=2", json=TINY_CONV)
    assert response.status_code == 202 and response.json()["nproc"] == 2
    done = wait_for(jobs_client, response.json()["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    assert done["nproc"] == 2 and done["model_version"] and done["progress"]["fraction"] == 1.0
    history = done["metrics"]["history"]
    assert len(history["epoch_losses"]) == 2 and history["images_seen"] == 2 * 600  # both epochs, both ranks
    assert done["loss_curve"] and done["metrics"]["p_at_10"] > 0  # rank 0's progress, then the evaluation
