"""Training over HTTP: real jobs in the real worker process, on a few hundred MNIST images."""

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from models.data.mnist import MnistSplit
from tests.helpers import JOBS_AUTH, JOBS_KEY, chance_precision, encode, png_of, serve, submit, wait_for


def test_models_are_listed_activated_and_answer_searches(
    jobs_client: TestClient, jobs_root: Path, trained_job: dict[str, Any], full_mnist: dict[str, MnistSplit]
) -> None:
    version = trained_job["model_version"]
    listed = jobs_client.get("/api/v1/models").json()
    assert version in [model["version"] for model in listed["data"]] and listed["count"] >= 1
    assert jobs_client.get("/api/v1/ready").status_code == 503  # nothing active yet in this workspace
    activated = jobs_client.post(f"/api/v1/models/{version}/activate")
    assert activated.status_code == 200, activated.text
    assert activated.json()["active"] is True and activated.json()["gallery_size"] == 600
    png = encode(Image.fromarray(full_mnist["train"].images[5]))
    body = jobs_client.post("/api/v1/search", files={"file": ("q.png", png)}).json()
    assert body["model"]["version"] == version and body["results"][0]["id"] == 5
    retrieval = jobs_client.get(f"/api/v1/models/{version}").json()["metrics"]["retrieval"]
    assert retrieval["p_at_10"] > 2 * chance_precision(full_mnist)  # the recorded figure is a real evaluation
    with serve(jobs_root, headers=JOBS_AUTH, api_keys=JOBS_KEY) as restarted:  # the activation is persisted
        assert restarted.get("/api/v1/models/active").json()["version"] == version


def test_pictures_of_a_model(
    jobs_client: TestClient, trained_job: dict[str, Any], full_mnist: dict[str, MnistSplit]
) -> None:
    version = trained_job["model_version"]
    loss = jobs_client.get(f"/api/v1/models/{version}/loss.png")
    assert loss.status_code == 200 and loss.headers["content-type"] == "image/png"
    png = encode(Image.fromarray(255 - full_mnist["test"].images[0]).resize((90, 90)))
    panels = jobs_client.post(f"/api/v1/models/{version}/reconstruct", files={"file": ("q.png", png)})
    assert panels.status_code == 200
    assert Image.open(io.BytesIO(panels.content)).size == (6 * (3 * 28 + 4), 6 * 28)
    assert jobs_client.get(f"/api/v1/jobs/{trained_job['id']}/loss.png").status_code == 200
    # A conv model is not generative and was trained_job without noise.
    assert jobs_client.get(f"/api/v1/models/{version}/samples.png").status_code == 409
    assert jobs_client.post(f"/api/v1/models/{version}/denoise", files={"file": ("q.png", png)}).status_code == 409
    assert jobs_client.get("/api/v1/models/ffffffffffff/loss.png").status_code == 404


def test_vae_samples_and_interpolations(jobs_client: TestClient, trained_job: dict[str, Any]) -> None:
    job = submit(jobs_client, {"variant": "vae", "hidden": [64], "training": {"epochs": 1}})
    done = wait_for(jobs_client, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    version = done["model_version"]
    samples = jobs_client.get(f"/api/v1/models/{version}/samples.png", params={"n": 9})
    assert samples.status_code == 200
    assert Image.open(io.BytesIO(samples.content)).size == (4 * (3 * 28 + 4), 4 * (3 * 28 + 4))
    line = jobs_client.get(f"/api/v1/models/{version}/interpolate.png", params={"a": 0, "b": 1, "steps": 5})
    assert line.status_code == 200, line.text
    for seed in (2**63 - 1, 2**64):  # the largest accepted seed, and one past torch's range (was a 500)
        status = jobs_client.get(f"/api/v1/models/{version}/samples.png", params={"seed": seed}).status_code
        assert status == (200 if seed < 2**63 else 422)


def test_denoising_model_denoises(jobs_client: TestClient, full_mnist: dict[str, MnistSplit]) -> None:
    job = submit(jobs_client, {"variant": "denoising", "code_dim": 64, "training": {"epochs": 1}})
    done = wait_for(jobs_client, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    png = encode(Image.fromarray(full_mnist["test"].images[1]))
    response = jobs_client.post(f"/api/v1/models/{done['model_version']}/denoise", files={"file": ("q.png", png)})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    too_large_seed = jobs_client.post(
        f"/api/v1/models/{done['model_version']}/denoise", params={"seed": 2**64}, files={"file": ("q.png", png)}
    )
    assert too_large_seed.status_code == 422 and "seed" in too_large_seed.json()["message"]


def test_latent_map_json_and_png(client: TestClient, train_images: np.ndarray) -> None:
    latent = client.get("/api/v1/models/active/latent-map").json()
    assert len(latent["points"]) == 600 and len(latent["components"]) == 2
    assert len(latent["mean"]) == 16 and 0 < sum(latent["explained_variance"]) <= 1.0 + 1e-6
    body = client.post("/api/v1/search", files={"file": ("q.png", png_of(train_images[0]))}, params={"debug": "true"})
    code = np.array(body.json()["query_code"])
    # The query is gallery image 0 itself: projected with the map, it lands on that point.
    x, y = np.array(latent["components"]) @ (code - np.array(latent["mean"]))
    assert (x, y) == pytest.approx(tuple(latent["points"][0][:2]), abs=1e-3)
    picture = client.get("/api/v1/models/active/latent-map.png")
    assert picture.status_code == 200 and picture.content[:4] == b"\x89PNG"
