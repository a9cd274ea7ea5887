"""The app and `aeseek serve`: readiness, refusals, and several worker processes sharing one data directory."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services.search import SearchService, Snapshot
from app.services.workspace import Workspace
from app.settings import Settings
from index.gallery import Gallery
from models.checkpoints import ModelRecord, load_model, read_record, save_model
from models.data.preprocessing import DecodeLimits
from models.registry import build_model
from tests.helpers import free_port, png_of, served_by, tiny_config, until


def test_service_without_a_model_is_live_but_not_ready(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, bootstrap=False, jobs_enabled=False))) as client:
        assert client.get("/api/v1/health").status_code == 200
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 503 and ready.json()["code"] == "not_ready"
        assert "aeseek train" in ready.json()["message"]
        search = client.post("/api/v1/search", files={"file": ("a.png", b"123")})
        assert search.status_code == 503


def test_service_refuses_a_gallery_of_another_model(trained_dir: Path, tmp_path: Path) -> None:
    active = Workspace(trained_dir, "idx").active()
    assert active is not None
    # A workspace whose active model is not the one the (shared) gallery was built with.
    (tmp_path / "galleries").symlink_to(trained_dir / "galleries")
    other = Workspace(tmp_path, "idx")
    record = save_model(build_model(tiny_config(seed=5)), other.models_dir)
    other.activate(record.version, tmp_path / active.gallery_dir)
    with TestClient(create_app(Settings(data_dir=tmp_path, bootstrap=False, jobs_enabled=False))) as client:
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 503
        message = ready.json()["message"]
        assert f"built with model {active.model_version}, but model {record.version} is loaded" in message
        assert "aeseek index build" in message


@pytest.mark.slow
def test_two_workers_follow_each_others_activations_and_gallery_changes(
    trained_copy: Path, train_images: np.ndarray
) -> None:
    workspace = Workspace(trained_copy, "idx")
    first = workspace.active()
    assert first is not None
    second = workspace.train(tiny_config(seed=7, epochs=1)).version
    port, key = free_port(), "workers-test-key-0123"
    env = {**os.environ, "AESEEK_DATA_DIR": str(trained_copy), "AESEEK_BOOTSTRAP": "false",
           "AESEEK_MNIST_SOURCE": "idx", "AESEEK_JOBS_ENABLED": "false", "AESEEK_API_KEYS": key,
           "AESEEK_LOG_LEVEL": "warning"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)], env=env
    )
    # A new connection per request: the kernel hands each to either worker.
    limits = httpx.Limits(max_keepalive_connections=0)
    query, answers = png_of(train_images[4]), []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
            until(lambda: _ready(client), seconds=120)
            assert all(served_by(client, query)[0] == first.model_version for _ in range(10))
            auth = {"Authorization": f"Bearer {key}"}
            assert client.post(f"/api/v1/models/{second}/activate", headers=auth).status_code == 200

            def all_on_second() -> bool:
                batch = [served_by(client, query) for _ in range(12)]
                answers.extend(batch)
                return all(version == second for version, _ in batch)

            until(all_on_second)  # every worker answers with the new model within a bounded time
            added = client.post(
                "/api/v1/gallery", headers=auth, files={"files": ("a.png", png_of(train_images[9]))},
                data={"labels": "4"},
            ).json()["data"][0]["id"]  # fmt: skip
            until(lambda: all(client.get(f"/api/v1/gallery/{added}").status_code == 200 for _ in range(12)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    # No answer mixed versions: each equals what the model it names answers alone.
    expected = {}
    for version in (first.model_version, second):
        directory = workspace.find_gallery(version, "train")
        assert directory is not None
        model, _ = load_model(workspace.models_dir / version)
        gallery = Gallery.load(directory, expected_model_version=version)
        expected[version] = SearchService(Snapshot.of(model, _record(workspace, version), gallery), DecodeLimits())
    for version, ids in answers:
        [outcome] = expected[version].search_images([expected[version].prepare_upload(query).query], 5)
        assert [n.item.id for n in outcome.neighbours] == ids


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/api/v1/ready").status_code == 200
    except httpx.TransportError:
        return False


def _record(workspace: Workspace, version: str) -> ModelRecord:
    return read_record(workspace.models_dir / version)
