"""Tests."""

from fastapi.testclient import TestClient


def test_health_ready_and_active_model(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    ready = client.get("/api/v1/ready").json()
    assert ready["status"] == "ready" and ready["gallery_size"] == 600
    active = client.get("/api/v1/models/active").json()
    assert active["variant"] == "conv" and active["config"]["code_dim"] == 16
    assert active["gallery"] == "train" and active["parameters"] > 0
    assert len(active["history"]["epoch_losses"]) == 2
