"""Tests."""

from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.services.workspace import Workspace
from app.settings import Settings
from models.checkpoints import save_model
from models.registry import build_model
from tests.helpers import tiny_config


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
