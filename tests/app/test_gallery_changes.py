"""Adding and removing gallery images over HTTP, without rebuilding, persisted, with stable ids."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from models.mnist import MnistSplit
from tests.models.test_preprocessing import encode

AUTH = {"Authorization": "Bearer gallery-key"}


def app_for(root: Path) -> TestClient:
    settings = Settings(data_dir=root, mnist_source="idx", bootstrap=False, jobs_enabled=False, api_keys="gallery-key")
    return TestClient(create_app(settings), headers=AUTH)


@pytest.fixture
def root(trained_copy: Path) -> Path:
    return trained_copy


def test_add_search_remove_and_survive_a_restart(root: Path, full_mnist: dict[str, MnistSplit]) -> None:
    digits = full_mnist["test"].images[:2]
    files = [
        ("files", (f"{i}.png", encode(Image.fromarray(255 - d).resize((84, 84))), "image/png"))
        for i, d in enumerate(digits)
    ]
    with app_for(root) as client:
        added = client.post(
            "/api/v1/gallery", files=files, data={"labels": "7,2", "metadata": json.dumps([{"who": "a"}, {"who": "b"}])}
        )
        assert added.status_code == 201, added.text
        items = added.json()["data"]
        assert [item["id"] for item in items] == [600, 601] and items[0]["metadata"] == {"who": "a"}
        assert client.get("/api/v1/ready").json()["gallery_size"] == 602
        query = encode(Image.fromarray(digits[0]))
        first = client.post("/api/v1/search", files={"file": ("q.png", query)}).json()["results"][0]
        assert first["id"] == 600  # the added scan of this very digit is its nearest neighbour
        assert client.get("/api/v1/gallery/600").json()["split"] == "added"
        assert client.delete("/api/v1/gallery/600").status_code == 204
        assert client.get("/api/v1/gallery/600").status_code == 404
        assert client.delete("/api/v1/gallery/600").status_code == 404
        again = client.post("/api/v1/gallery", files=files[:1], data={"labels": "7"}).json()["data"]
        assert again[0]["id"] == 602  # ids are never reused
    with app_for(root) as client:  # persisted: a restart sees the same gallery
        assert client.get("/api/v1/ready").json()["gallery_size"] == 602
        assert client.get("/api/v1/gallery/601").json()["metadata"] == {"who": "b"}
        assert client.get("/api/v1/gallery/600").status_code == 404


def test_a_bad_file_adds_nothing_and_keys_are_required(root: Path, full_mnist: dict[str, MnistSplit]) -> None:
    good = ("files", ("a.png", encode(Image.fromarray(full_mnist["test"].images[0])), "image/png"))
    bad = ("files", ("b.png", b"not an image", "image/png"))
    with app_for(root) as client:
        response = client.post("/api/v1/gallery", files=[good, bad], data={"labels": "7"})
        assert response.status_code == 415
        assert client.get("/api/v1/ready").json()["gallery_size"] == 600
        assert client.post("/api/v1/gallery", files=[good], data={"labels": "x"}).status_code == 422
        assert client.post("/api/v1/gallery", files=[good], data={"labels": "1,2"}).status_code == 422
        assert client.post("/api/v1/gallery", files=[good], data={"labels": "1", "metadata": "{"}).status_code == 422
        unauthenticated = client.post(
            "/api/v1/gallery", files=[good], data={"labels": "7"}, headers={"Authorization": ""}
        )
        assert unauthenticated.status_code == 401
        assert client.delete("/api/v1/gallery/3", headers={"Authorization": "Bearer nope"}).status_code == 403
