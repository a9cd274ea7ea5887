"""Adding and removing gallery images over HTTP, without rebuilding, persisted, with stable ids."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from models.data.mnist import MnistSplit
from tests.helpers import encode, png_of, serve

AUTH = {"Authorization": "Bearer gallery-test-key-0123"}


def test_add_search_remove_and_survive_a_restart(trained_copy: Path, full_mnist: dict[str, MnistSplit]) -> None:
    digits = full_mnist["test"].images[:2]
    files = [
        ("files", (f"{i}.png", encode(Image.fromarray(255 - d).resize((84, 84))), "image/png"))
        for i, d in enumerate(digits)
    ]
    with serve(trained_copy, headers=AUTH, api_keys="gallery-test-key-0123") as client:
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
    with serve(
        trained_copy, headers=AUTH, api_keys="gallery-test-key-0123"
    ) as client:  # persisted: a restart sees the same gallery
        assert client.get("/api/v1/ready").json()["gallery_size"] == 602
        assert client.get("/api/v1/gallery/601").json()["metadata"] == {"who": "b"}
        assert client.get("/api/v1/gallery/600").status_code == 404


def test_a_bad_file_adds_nothing_and_keys_are_required(trained_copy: Path, full_mnist: dict[str, MnistSplit]) -> None:
    good = ("files", ("a.png", encode(Image.fromarray(full_mnist["test"].images[0])), "image/png"))
    bad = ("files", ("b.png", b"not an image", "image/png"))
    with serve(trained_copy, headers=AUTH, api_keys="gallery-test-key-0123") as client:
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


def test_gallery_item_and_image(client: TestClient, train_images: np.ndarray, full_mnist: dict) -> None:
    item = client.get("/api/v1/gallery/9").json()
    assert item == {
        "id": 9,
        "split": "train",
        "index": 9,
        "label": int(full_mnist["train"].labels[9]),
        "image_url": "/api/v1/gallery/9/image",
        "metadata": None,
    }
    response = client.get("/api/v1/gallery/9/image")
    assert response.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content))), train_images[9])
    large = Image.open(io.BytesIO(client.get("/api/v1/gallery/9/image", params={"scale": 4}).content))
    assert large.size == (112, 112)


@pytest.mark.parametrize("path", ["/api/v1/gallery/999999", "/api/v1/gallery/999999/image"])
def test_unknown_gallery_id_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found" and "999999" in response.json()["message"]


def test_bad_gallery_parameters_are_422(client: TestClient) -> None:
    assert client.get("/api/v1/gallery/abc").status_code == 422
    assert client.get("/api/v1/gallery/1/image", params={"scale": 99}).status_code == 422


def test_neighbours_of_a_gallery_item(client: TestClient, train_images: np.ndarray) -> None:
    body = client.get("/api/v1/gallery/42/neighbours", params={"k": 5}).json()
    ids = [r["id"] for r in body["results"]]
    assert 42 not in ids and len(ids) == 5 and [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
    # The same as searching with the image itself, minus the image.
    searched = client.post("/api/v1/search", files={"file": ("q.png", png_of(train_images[42]))}, params={"k": 6})
    assert [r["id"] for r in searched.json()["results"]][1:] == ids
    assert client.get("/api/v1/gallery/999999/neighbours").status_code == 404


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_metadata_is_bounded_in_depth_and_size(trained_copy: Path, full_mnist: dict[str, MnistSplit]) -> None:
    good = ("files", ("a.png", encode(Image.fromarray(full_mnist["test"].images[0])), "image/png"))
    with serve(trained_copy, headers=AUTH, api_keys="gallery-test-key-0123") as client:
        for metadata, status in [
            (nested(8), 201),
            (nested(9), 422),
            (nested(300), 422),  # was a 500 with the item saved, then a 500 on every read of it
            ({"text": "x" * 5000}, 422),
        ]:
            response = client.post(
                "/api/v1/gallery", files=[good], data={"labels": "1", "metadata": json.dumps(metadata)}
            )
            assert response.status_code == status, response.text
        deep = "[" * 100_000 + "]" * 100_000  # deeper than Python's JSON parser recurses
        response = client.post("/api/v1/gallery", files=[good], data={"labels": "1", "metadata": deep})
        assert response.status_code == 422 and response.json()["code"] == "validation_error"
        assert client.get("/api/v1/ready").json()["gallery_size"] == 601


def test_gallery_images_are_revalidated_not_cached_for_an_hour(client: TestClient) -> None:
    first = client.get("/api/v1/gallery/3/image")
    assert first.headers["cache-control"] == "no-cache" and first.headers["etag"]
    again = client.get("/api/v1/gallery/3/image", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/api/v1/gallery/3/image?scale=2").headers["etag"] != first.headers["etag"]
