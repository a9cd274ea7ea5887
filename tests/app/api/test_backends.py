"""The API's behaviour on every gallery backend: FAISS files, Milvus Lite, and a real Milvus server.

Each test runs once per backend over a private copy of the tiny trained model; the Milvus
backends start from an empty Milvus and activate the model through the API. Answers are
compared with the FAISS backend's over the same model and gallery.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.services.galleries import milvus_store
from app.services.workspace import Workspace
from models.data.mnist import MnistSplit
from tests.helpers import encode, free_port, png_of, serve, serving_settings, tiny_config

KEY = "backends-test-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}
BACKENDS = ["faiss", "milvus-lite", "milvus"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, milvus_prefix: str) -> dict[str, Any]:
    """Settings that select one backend (Milvus ones with a collection prefix of this test's own)."""
    if request.param == "faiss":
        return {"index_backend": "faiss"}
    uri = str(tmp_path / "lite.db") if request.param == "milvus-lite" else request.getfixturevalue("milvus_server")
    return {"index_backend": "milvus", "milvus_uri": uri, "milvus_prefix": milvus_prefix}


@pytest.fixture
def served(trained_copy: Path, backend: dict[str, Any]) -> Iterator[TestClient]:
    """The app over the trained copy on the backend, its model active there."""
    with serve(trained_copy, headers=AUTH, api_keys=KEY, **backend) as client:
        if backend["index_backend"] == "milvus":
            assert client.get("/api/v1/ready").status_code == 503  # an empty Milvus: nothing active yet
            version = Workspace(trained_copy).active().model_version  # type: ignore[union-attr]
            assert client.post(f"/api/v1/models/{version}/activate").status_code == 200
        yield client


def _upload(image: np.ndarray, name: str = "q.png") -> tuple[str, tuple[str, bytes, str]]:
    return ("file", (name, encode(Image.fromarray(image).resize((112, 112))), "image/png"))


def _answer(response: Any) -> list[tuple[int, int, float]]:
    assert response.status_code == 200, response.text
    return [(hit["id"], hit["label"], round(hit["distance"], 3)) for hit in response.json()["results"]]


def test_search_batch_item_image_and_label_filter_answer_as_faiss(
    served: TestClient, trained_copy: Path, full_mnist: dict[str, MnistSplit], train_images: np.ndarray
) -> None:
    queries = full_mnist["test"].images[:3]
    with serve(trained_copy) as reference:  # the FAISS files of the same model and gallery
        for query in queries:
            for params in ({"k": 10}, {"k": 10, "label": 3}):
                got = _answer(served.post("/api/v1/search", params=params, files=[_upload(query)]))
                want = _answer(reference.post("/api/v1/search", params=params, files=[_upload(query)]))
                assert [hit[:2] for hit in got] == [hit[:2] for hit in want]
                assert np.allclose([hit[2] for hit in got], [hit[2] for hit in want], atol=2e-3)
                assert "label" not in params or all(label == 3 for _, label, _ in got)
        files = [("files", (f"{i}.png", png_of(query), "image/png")) for i, query in enumerate(queries)]
        batch = served.post("/api/v1/search/batch", params={"k": 5}, files=files)
        assert batch.status_code == 200, batch.text
        singles = [
            [hit[0] for hit in _answer(reference.post("/api/v1/search", params={"k": 5}, files=[("file", f[1])]))]
            for f in files
        ]
        assert [[hit["id"] for hit in row["results"]] for row in batch.json()["items"]] == singles
    item = served.get("/api/v1/gallery/7").json()
    assert item["id"] == 7 and item["split"] == "train" and item["index"] == 7
    image = served.get("/api/v1/gallery/7/image")
    assert image.status_code == 200
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image.content))), train_images[7])
    assert served.get("/api/v1/gallery/100000").status_code == 404
    assert served.post("/api/v1/search", params={"label": 42}, files=[_upload(queries[0])]).status_code == 422


def test_add_delete_and_a_restart_keep_the_same_id_rules(
    served: TestClient, trained_copy: Path, backend: dict[str, Any], full_mnist: dict[str, MnistSplit]
) -> None:
    digits = full_mnist["test"].images[:2]
    files = [
        ("files", (f"{i}.png", encode(Image.fromarray(255 - d).resize((84, 84))), "image/png"))
        for i, d in enumerate(digits)
    ]
    added = served.post(
        "/api/v1/gallery", files=files, data={"labels": "7,2", "metadata": '[{"who": "a"}, {"who": "b"}]'}
    )
    assert added.status_code == 201, added.text
    assert [item["id"] for item in added.json()["data"]] == [600, 601]
    assert served.get("/api/v1/ready").json()["gallery_size"] == 602
    nearest = _answer(
        served.post("/api/v1/search", files=[("file", ("q.png", encode(Image.fromarray(digits[0])), "image/png"))])
    )
    assert nearest[0][0] == 600  # the added scan of this very digit
    assert served.get("/api/v1/gallery/601").json()["metadata"] == {"who": "b"}
    assert served.delete("/api/v1/gallery/600").status_code == 204
    assert served.get("/api/v1/gallery/600").status_code == 404
    assert served.delete("/api/v1/gallery/600").status_code == 404
    again = served.post("/api/v1/gallery", files=files[:1], data={"labels": "7"}).json()["data"]
    assert again[0]["id"] == 602  # never reused
    with serve(trained_copy, headers=AUTH, api_keys=KEY, **backend) as restarted:
        assert restarted.get("/api/v1/ready").json()["gallery_size"] == 602
        assert restarted.get("/api/v1/gallery/601").json()["metadata"] == {"who": "b"}
        assert restarted.get("/api/v1/gallery/600").status_code == 404


@pytest.mark.slow
def test_a_swap_under_load_never_mixes_versions(
    served: TestClient, trained_copy: Path, full_mnist: dict[str, MnistSplit]
) -> None:
    first = served.get("/api/v1/ready").json()["model"]["version"]
    second = Workspace(trained_copy, "idx").train(tiny_config(seed=1)).version
    query = [("file", ("q.png", png_of(full_mnist["test"].images[0]), "image/png"))]
    before = _answer(served.post("/api/v1/search", files=query))
    answers: list[tuple[str, list[tuple[int, int, float]]]] = []
    stop = threading.Event()

    def search_until_stopped() -> None:
        while not stop.is_set():
            response = served.post("/api/v1/search", files=query)
            answers.append((response.json()["model"]["version"], _answer(response)))

    threads = [threading.Thread(target=search_until_stopped) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert served.post(f"/api/v1/models/{second}/activate").status_code == 200
        after = _answer(served.post("/api/v1/search", files=query))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert after != before
    expected = {first: before, second: after}
    assert answers and all(found == expected[version] for version, found in answers)


def test_an_unreachable_milvus_leaves_the_service_live_but_not_ready(
    trained_copy: Path, full_mnist: dict[str, MnistSplit]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with serve(trained_copy, index_backend="milvus", milvus_uri=dead, milvus_prefix="nothing") as client:
        assert client.get("/api/v1/health").status_code == 200
        ready = client.get("/api/v1/ready")
        assert ready.status_code == 503 and "cannot be reached" in ready.json()["message"]
        search = client.post(
            "/api/v1/search", files=[("file", ("q.png", png_of(np.zeros((28, 28), np.uint8) + 255), "image/png"))]
        )
        assert search.status_code == 503 and search.json()["code"] == "not_ready"


def test_an_index_kind_milvus_lite_lacks_is_a_409_naming_it(trained_copy: Path, tmp_path: Path) -> None:
    lite = {"index_backend": "milvus", "milvus_uri": str(tmp_path / "lite.db"), "index_kind": "IVFPQ"}
    with serve(trained_copy, headers=AUTH, api_keys=KEY, **lite) as client:
        version = Workspace(trained_copy).active().model_version  # type: ignore[union-attr]
        response = client.post(f"/api/v1/models/{version}/activate")
        assert response.status_code == 409 and "Milvus Lite cannot build a IVFPQ" in response.json()["message"]
        assert client.get("/api/v1/ready").status_code == 503  # nothing half-built became active


def test_deleting_a_model_removes_its_files_and_its_galleries(
    served: TestClient, trained_copy: Path, backend: dict[str, Any]
) -> None:
    first = served.get("/api/v1/ready").json()["model"]["version"]
    second = Workspace(trained_copy, "idx").train(tiny_config(seed=3, epochs=1)).version
    assert served.post(f"/api/v1/models/{second}/activate").status_code == 200
    assert served.delete(f"/api/v1/models/{second}").status_code == 409  # it answers searches
    assert served.post(f"/api/v1/models/{first}/activate").status_code == 200
    assert served.delete(f"/api/v1/models/{second}").status_code == 204
    assert served.get(f"/api/v1/models/{second}").status_code == 404
    assert not (trained_copy / "models" / second).exists()
    if backend["index_backend"] == "milvus":
        store = milvus_store(serving_settings(trained_copy, **backend))
        assert store.collections(version=second) == [] and store.collections(version=first)
