import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from models.mnist import MnistSplit
from tests.models.test_preprocessing import bomb_png, encode, paper_scan


def png_of(image: np.ndarray) -> bytes:
    return encode(Image.fromarray(image))


@pytest.fixture(scope="module")
def train_images(full_mnist: dict[str, MnistSplit]) -> np.ndarray:
    return full_mnist["train"].images


def search(client: TestClient, data: bytes, **params: object) -> dict:
    response = client.post("/api/v1/search", files={"file": ("q.png", data, "image/png")}, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_gallery_image_finds_itself_first(client: TestClient, train_images: np.ndarray) -> None:
    body = search(client, png_of(train_images[42]), k=5)
    first = body["results"][0]
    assert first["id"] == 42 and first["rank"] == 1
    assert first["distance"] == pytest.approx(0.0, abs=1e-3)
    assert first["score"] == pytest.approx(1.0, abs=1e-3)
    assert first["image_url"] == "/api/v1/gallery/42/image"
    assert len(body["results"]) == 5
    assert [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
    distances = [r["distance"] for r in body["results"]]
    assert distances == sorted(distances)


def test_response_names_the_model_and_stage_timings(client: TestClient, train_images: np.ndarray) -> None:
    body = search(client, png_of(train_images[1]))
    active = client.get("/api/v1/models/active").json()
    assert body["model"] == {"version": active["version"], "variant": "conv"}
    assert {"decode", "preprocess", "encode", "search"} <= set(body["timings_ms"])
    assert body["query_ms"] > 0
    assert len(body["results"]) == 10
    assert all(0 < r["score"] <= 1 and 0 <= r["label"] <= 9 for r in body["results"])


def test_a_paper_photo_of_a_digit_is_searchable(client: TestClient, train_images: np.ndarray) -> None:
    body = search(client, encode(paper_scan(train_images[7]).convert("RGB"), "JPEG"), k=3)
    assert body["results"][0]["id"] == 7


def test_debug_returns_the_image_the_model_saw(client: TestClient, train_images: np.ndarray) -> None:
    body = search(client, png_of(train_images[3]), debug="true")
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["query_png"]))))
    assert seen.shape == (28, 28)
    assert np.abs(seen.astype(int) - train_images[3]).mean() < 2
    reconstruction = Image.open(io.BytesIO(base64.b64decode(body["reconstruction_png"])))
    assert reconstruction.size == (28, 28)


@pytest.mark.parametrize("k", [0, 101, -3, "ten", 2.5])
def test_k_out_of_range_is_a_422_naming_k(client: TestClient, train_images: np.ndarray, k: object) -> None:
    response = client.post("/api/v1/search", files={"file": ("q.png", png_of(train_images[0]))}, params={"k": k})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error" and "k" in body["message"]


BAD_UPLOADS = {
    "empty file": (b"", 400, "empty_file"),
    "text": (b"just some text", 415, "unsupported_image"),
    "html named png": (b"<!doctype html><html></html>", 415, "unsupported_image"),
    "pdf": (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", 415, "unsupported_image"),
    "truncated png": (encode(Image.new("L", (64, 64), 30))[:60], 400, "corrupt_image"),
    "decompression bomb": (bomb_png(50_000, 50_000), 413, "image_too_large"),
    "blank white": (encode(Image.new("L", (40, 40), 255)), 422, "no_ink"),
    "blank black": (encode(Image.new("RGB", (40, 40), (0, 0, 0))), 422, "no_ink"),
}


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_uploads_get_a_clear_4xx(client: TestClient, name: str) -> None:
    data, status, code = BAD_UPLOADS[name]
    response = client.post("/api/v1/search", files={"file": ("q.png", data, "image/png")})
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"]
    assert client.get("/api/v1/health").status_code == 200


def test_missing_file_field_names_the_field(client: TestClient) -> None:
    response = client.post("/api/v1/search", files={"image": ("q.png", b"x")})
    assert response.status_code == 422
    assert "file" in response.json()["message"]
    assert client.post("/api/v1/search").status_code == 422


def test_upload_over_the_size_limit_is_413(client: TestClient) -> None:
    big = b"\x00" * (3 * 1024 * 1024)
    response = client.post("/api/v1/search", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert "AESEEK_MAX_UPLOAD_BYTES" in response.json()["message"]


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


def test_health_ready_and_active_model(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    ready = client.get("/api/v1/ready").json()
    assert ready["status"] == "ready" and ready["gallery_size"] == 600
    active = client.get("/api/v1/models/active").json()
    assert active["variant"] == "conv" and active["config"]["code_dim"] == 16
    assert active["gallery"] == "train" and active["parameters"] > 0
    assert len(active["history"]["epoch_losses"]) == 2


def test_unknown_route_uses_the_error_format(client: TestClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert operation.get("description"), (method, path)
            assert operation.get("tags"), (method, path)
    search = spec["paths"]["/api/v1/search"]["post"]
    assert {"413", "415", "422"} <= set(search["responses"])
    assert client.get("/docs").status_code == 200


def test_request_ids_timing_headers_and_metrics(client: TestClient, train_images: np.ndarray) -> None:
    response = client.post(
        "/api/v1/search", files={"file": ("q.png", png_of(train_images[2]))}, headers={"X-Request-ID": "abc-123"}
    )
    assert response.headers["x-request-id"] == "abc-123"
    assert float(response.headers["x-response-time-ms"]) > 0
    stages = dict(part.split(";dur=") for part in response.headers["server-timing"].split(", "))
    assert {"decode", "preprocess", "encode", "search"} <= set(stages)
    generated = client.get("/api/v1/health", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'aeseek_requests_total{method="POST",route="/api/v1/search",status="200"}' in text
    assert 'aeseek_search_stage_seconds_count{stage="encode"}' in text
    assert "aeseek_gallery_size 600.0" in text
    assert 'aeseek_active_model_info{variant="conv"' in text


def test_json_logs_carry_the_request_id() -> None:
    import json
    import logging

    from app.observability import JsonFormatter, request_id_var

    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord("aeseek", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello world" and line["request_id"] == "req-42" and line["level"] == "info"


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


def test_batch_search_answers_each_file_and_isolates_errors(client: TestClient, train_images: np.ndarray) -> None:
    files = [
        ("files", ("a.png", png_of(train_images[11]), "image/png")),
        ("files", ("blank.png", encode(Image.new("L", (30, 30), 255)), "image/png")),
        ("files", ("text.png", b"not an image", "image/png")),
        ("files", ("b.png", png_of(train_images[12]), "image/png")),
    ]
    response = client.post("/api/v1/search/batch", files=files, params={"k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 4 and body["model"]["variant"] == "conv"
    first, blank, text, last = body["items"]
    assert first["status"] == 200 and first["results"][0]["id"] == 11 and len(first["results"]) == 3
    assert (blank["status"], blank["error"]["code"]) == (422, "no_ink")
    assert (text["status"], text["error"]["code"]) == (415, "unsupported_image")
    assert last["results"][0]["id"] == 12 and last["filename"] == "b.png"
    # Batched answers equal single ones.
    single = client.post("/api/v1/search", files={"file": ("a.png", png_of(train_images[11]))}, params={"k": 3})
    assert [r["id"] for r in single.json()["results"]] == [r["id"] for r in first["results"]]


def test_batch_search_limits(client: TestClient, train_images: np.ndarray) -> None:
    many = [("files", (f"{i}.png", png_of(train_images[i]), "image/png")) for i in range(33)]
    response = client.post("/api/v1/search/batch", files=many)
    assert response.status_code == 422 and "AESEEK_MAX_BATCH_FILES" in response.json()["message"]
    assert client.post("/api/v1/search/batch").status_code == 422


def test_label_filter_returns_k_results_of_that_label(client: TestClient, train_images: np.ndarray) -> None:
    body = client.post(
        "/api/v1/search", files={"file": ("q.png", png_of(train_images[0]))}, params={"k": 20, "label": 4}
    )
    labels = [r["label"] for r in body.json()["results"]]
    assert labels == [4] * 20
    empty = client.post("/api/v1/search", files={"file": ("q.png", png_of(train_images[0]))}, params={"label": 77})
    assert empty.status_code == 200 and empty.json()["results"] == []


def test_neighbours_of_a_gallery_item(client: TestClient, train_images: np.ndarray) -> None:
    body = client.get("/api/v1/gallery/42/neighbours", params={"k": 5}).json()
    ids = [r["id"] for r in body["results"]]
    assert 42 not in ids and len(ids) == 5 and [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
    # The same as searching with the image itself, minus the image.
    searched = client.post("/api/v1/search", files={"file": ("q.png", png_of(train_images[42]))}, params={"k": 6})
    assert [r["id"] for r in searched.json()["results"]][1:] == ids
    assert client.get("/api/v1/gallery/999999/neighbours").status_code == 404
