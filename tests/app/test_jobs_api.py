"""Training over HTTP: real jobs in the real worker process, on a few hundred MNIST images."""

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from models.mnist import MnistSplit
from tests.models.test_preprocessing import encode

TINY_CONV = {"variant": "conv", "channels": [8, 16, 32], "training": {"epochs": 2, "batch_size": 64}}
WAIT_S = 180  # an upper bound on waiting for a state, not a performance assertion


KEY = "jobs-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def settings_for(root: Path) -> Settings:
    return Settings(data_dir=root, mnist_source="idx", bootstrap=False, jobs_enabled=True, api_keys=KEY)


@pytest.fixture(scope="module")
def root(small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("jobs")
    (directory / "mnist").symlink_to(small_data_dir / "mnist")
    return directory


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(root)), headers=AUTH) as test_client:
        yield test_client


def wait_for(client: TestClient, job_id: str, states: set[str], condition: Any = None) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in states and (condition is None or condition(job)):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states}: {job}")


def submit(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/train", json=body)
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture(scope="module")
def trained(client: TestClient) -> dict[str, Any]:
    job = submit(client, TINY_CONV)
    assert job["state"] == "queued" and job["variant"] == "conv"
    return wait_for(client, job["id"], {"succeeded", "failed"})


def test_a_job_trains_evaluates_and_saves_a_model(trained: dict[str, Any]) -> None:
    assert trained["state"] == "succeeded", trained["error"]
    assert trained["progress"]["fraction"] == 1.0 and trained["progress"]["epoch"] == 2
    assert trained["loss_curve"] and all(phase == "train" for phase, _, _ in trained["loss_curve"])
    assert 0 <= trained["metrics"]["p_at_10"] <= 1 and trained["metrics"]["reconstruction_mse"] > 0
    assert trained["model_version"] and trained["attempts"] == 1


def test_models_are_listed_activated_and_answer_searches(
    client: TestClient, trained: dict[str, Any], full_mnist: dict[str, MnistSplit]
) -> None:
    version = trained["model_version"]
    listed = client.get("/api/v1/models").json()
    assert version in [model["version"] for model in listed["data"]] and listed["count"] >= 1
    assert client.get("/api/v1/ready").status_code == 503  # nothing active yet in this workspace
    activated = client.post(f"/api/v1/models/{version}/activate")
    assert activated.status_code == 200, activated.text
    assert activated.json()["active"] is True and activated.json()["gallery_size"] == 600
    png = encode(Image.fromarray(full_mnist["train"].images[5]))
    body = client.post("/api/v1/search", files={"file": ("q.png", png)}).json()
    assert body["model"]["version"] == version and body["results"][0]["id"] == 5
    assert client.get(f"/api/v1/models/{version}").json()["metrics"]["retrieval"]["p_at_10"] >= 0


def test_pictures_of_a_model(client: TestClient, trained: dict[str, Any], full_mnist: dict[str, MnistSplit]) -> None:
    version = trained["model_version"]
    loss = client.get(f"/api/v1/models/{version}/loss.png")
    assert loss.status_code == 200 and loss.headers["content-type"] == "image/png"
    png = encode(Image.fromarray(255 - full_mnist["test"].images[0]).resize((90, 90)))
    panels = client.post(f"/api/v1/models/{version}/reconstruct", files={"file": ("q.png", png)})
    assert panels.status_code == 200
    assert Image.open(io.BytesIO(panels.content)).size == (6 * (3 * 28 + 4), 6 * 28)
    assert client.get(f"/api/v1/jobs/{trained['id']}/loss.png").status_code == 200
    # A conv model is not generative and was trained without noise.
    assert client.get(f"/api/v1/models/{version}/samples.png").status_code == 409
    assert client.post(f"/api/v1/models/{version}/denoise", files={"file": ("q.png", png)}).status_code == 409
    assert client.get("/api/v1/models/ffffffffffff/loss.png").status_code == 404


def test_vae_samples_and_interpolations(client: TestClient, trained: dict[str, Any]) -> None:
    job = submit(client, {"variant": "vae", "hidden": [64], "training": {"epochs": 1}})
    done = wait_for(client, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    version = done["model_version"]
    samples = client.get(f"/api/v1/models/{version}/samples.png", params={"n": 9})
    assert samples.status_code == 200
    assert Image.open(io.BytesIO(samples.content)).size == (4 * (3 * 28 + 4), 4 * (3 * 28 + 4))
    line = client.get(f"/api/v1/models/{version}/interpolate.png", params={"a": 0, "b": 1, "steps": 5})
    assert line.status_code == 200, line.text


def test_denoising_model_denoises(client: TestClient, full_mnist: dict[str, MnistSplit]) -> None:
    job = submit(client, {"variant": "denoising", "code_dim": 64, "training": {"epochs": 1}})
    done = wait_for(client, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    png = encode(Image.fromarray(full_mnist["test"].images[1]))
    response = client.post(f"/api/v1/models/{done['model_version']}/denoise", files={"file": ("q.png", png)})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_stacked_job_reports_its_layers(client: TestClient) -> None:
    body = {"variant": "stacked", "hidden": [32], "code_dim": 8, "layer_epochs": 1, "training": {"epochs": 1}}
    done = wait_for(client, submit(client, body)["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    phases = {phase for phase, _, _ in done["loss_curve"]}
    assert {"layer 1/2", "layer 2/2", "train"} <= phases
    assert done["metrics"]["history"]["epoch_losses"][0] >= 0


def test_cancel_a_running_job(client: TestClient) -> None:
    long = {**TINY_CONV, "training": {"epochs": 500, "batch_size": 64}}
    job = submit(client, long)
    wait_for(client, job["id"], {"running"}, lambda j: j["progress"]["step"] > 0)
    assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 202
    cancelled = wait_for(client, job["id"], {"cancelled", "failed", "succeeded"})
    assert cancelled["state"] == "cancelled"
    again = client.delete(f"/api/v1/jobs/{job['id']}")
    assert again.status_code == 409 and "only queued or running" in again.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variant": "fancy"}, "variant"),
        ({"variant": "l2", "l2_lambda": -1}, "l2_lambda"),
        ({"variant": "conv", "code_dim": 0}, "code_dim"),
        ({"variant": "conv", "colour": "red"}, "colour"),
        ({"variant": "vae", "training": {"epochs": 0}}, "epochs"),
        ({}, "variant"),
    ],
)
def test_bad_configs_are_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/v1/train", json=body)
    assert response.status_code == 422
    assert field in response.json()["message"]


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/api/v1/train", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


def test_unknown_job_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/jobs/000000000000").status_code == 404
    assert client.post("/api/v1/jobs/../../etc/resume").status_code == 404


def test_killed_worker_leaves_an_interrupted_job_that_resumes(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    body = {**TINY_CONV, "training": {"epochs": 40, "batch_size": 64}}
    job = submit(client, body)
    wait_for(client, job["id"], {"running"}, lambda j: j["progress"]["epoch"] >= 3)
    runtime.jobs._process.kill()  # SIGKILL: no cleanup of any kind
    interrupted = wait_for(client, job["id"], {"interrupted"})
    assert "resume" in interrupted["error"]
    resumed = client.post(f"/api/v1/jobs/{job['id']}/resume")
    assert resumed.status_code == 202 and resumed.json()["state"] == "queued"
    done = wait_for(client, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    assert len(done["metrics"]["history"]["epoch_losses"]) == 40


def test_jobs_survive_a_restart(client: TestClient, root: Path, trained: dict[str, Any]) -> None:
    with TestClient(create_app(settings_for(root)), headers=AUTH) as second:
        listed = second.get("/api/v1/jobs").json()
        ids = {job["id"]: job["state"] for job in listed["data"]}
        assert ids[trained["id"]] == "succeeded" and listed["count"] == len(ids)
        assert second.get("/api/v1/ready").status_code == 200  # the activated model is still active


def test_queue_limit(root: Path) -> None:
    settings = settings_for(root).model_copy(update={"max_queued_jobs": 1, "jobs_enabled": True})
    with TestClient(create_app(settings), headers=AUTH) as limited:
        long = {**TINY_CONV, "training": {"epochs": 500}}
        first, second, third = (limited.post("/api/v1/train", json=long) for _ in range(3))
        statuses = [first.status_code, second.status_code, third.status_code]
        assert 429 in statuses and statuses[0] == 202
        for response in (first, second, third):
            if response.status_code == 202:
                limited.delete(f"/api/v1/jobs/{response.json()['id']}")
