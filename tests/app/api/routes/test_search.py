"""The bad-input corpus against the real service: a clear 4xx each, and the server keeps serving."""

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from models.data.mnist import MnistSplit
from tests.data.make_bad_inputs import CORPUS
from tests.helpers import bomb_png, encode, paper_scan, png_of, search

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


@pytest.mark.parametrize("k", ["abc", "0", "101", "-1", "1e3", ""])
def test_bad_k(client: TestClient, k: str) -> None:
    data = (CORPUS / "rgba-ink.png").read_bytes()
    response = client.post(f"/api/v1/search?k={k}", files={"file": ("q.png", data)})
    assert response.status_code == 422 and "k" in response.json()["message"]


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
    # Scores fall as distances grow, and labels are the gallery items' own.
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    labels = {r["id"]: r["label"] for r in body["results"]}
    assert all(client.get(f"/api/v1/gallery/{i}").json()["label"] == label for i, label in labels.items())


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


def test_a_label_no_item_has_is_a_422_not_a_new_cache_entry(client: TestClient, train_images: np.ndarray) -> None:
    gallery = client.app.state.runtime.require_search().snapshot.gallery  # type: ignore[attr-defined]
    for label in (10, 42, 10**9):
        response = client.post(
            "/api/v1/search", files={"file": ("q.png", png_of(train_images[0]))}, params={"label": label}
        )
        assert response.status_code == 422 and "not a label of this gallery" in response.json()["message"]
    assert gallery.labels == list(range(10))


def test_relevance_feedback_moves_the_query_towards_what_was_marked(
    client: TestClient, full_mnist: dict[str, MnistSplit]
) -> None:
    before, after = [], []
    for image, label in zip(full_mnist["test"].images[:20], full_mnist["test"].labels[:20], strict=True):
        first = search(client, png_of(image), debug="true")
        marks = {"relevant": [], "not_relevant": []}  # a person who knows the digit marks the top 10
        for result in first["results"]:
            marks["relevant" if result["label"] == label else "not_relevant"].append(result["id"])
        refined = client.post("/api/v1/search/feedback", json={"code": first["query_code"], **marks, "k": 10})
        assert refined.status_code == 200, refined.text
        results = refined.json()["results"]
        assert not {r["id"] for r in results} & set(marks["not_relevant"])  # refused items stay out
        assert len(refined.json()["query_code"]) == len(first["query_code"])
        before.append(np.mean([r["label"] == label for r in first["results"]]))
        after.append(np.mean([r["label"] == label for r in results]))
    assert np.mean(after) > np.mean(before)  # the marks help on average


def test_feedback_and_similar_refuse_what_they_cannot_use(client: TestClient) -> None:
    assert client.post("/api/v1/search/feedback", json={"relevant": [1]}).status_code == 422  # no query
    wrong = client.post("/api/v1/search/feedback", json={"code": [0.0, 1.0]})
    assert wrong.status_code == 422 and "values" in wrong.json()["message"]
    assert client.post("/api/v1/search/feedback", json={"ids": [10**9]}).status_code == 404
    assert client.post("/api/v1/search/similar", json={"ids": []}).status_code == 422


def test_more_like_these_leaves_them_out(client: TestClient, full_mnist: dict[str, MnistSplit]) -> None:
    labels = full_mnist["train"].labels[:600]
    sevens = [int(i) for i in np.flatnonzero(labels == 7)[:3]]
    body = client.post("/api/v1/search/similar", json={"ids": sevens, "k": 10}).json()
    found = [r["id"] for r in body["results"]]
    assert len(found) == 10 and not set(found) & set(sevens)
    assert np.mean([r["label"] == 7 for r in body["results"]]) > 2 * np.mean(labels == 7)  # well above chance
