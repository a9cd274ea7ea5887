"""The bad-input corpus against the real service: a clear 4xx each, and the server keeps serving."""

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api.middleware import new_request_id
from app.services.runtime import Runtime
from tests.helpers import png_of, serve

GALLERY_AUTH = {"Authorization": "Bearer gallery-test-key-0123"}


def test_huge_upload_is_refused_from_its_declared_length(client: TestClient) -> None:
    # Over the 2 MiB test limit: refused from Content-Length, before the body is parsed.
    response = client.post("/api/v1/search", files={"file": ("big.png", b"\x00" * (5 * 1024 * 1024), "image/png")})
    assert response.status_code == 413 and response.json()["code"] == "upload_too_large", response.text


def test_streamed_upload_without_length_is_cut_off(client: TestClient) -> None:
    def chunks():  # no Content-Length: chunked transfer
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="q.png"\r\n\r\n'
        for _ in range(64):
            yield b"\x00" * 65536
        yield b"\r\n--b--\r\n"

    response = client.post(
        "/api/v1/search", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413 and response.json()["code"] == "upload_too_large", response.text


def test_request_ids_and_timing_headers(client: TestClient, train_images: np.ndarray) -> None:
    response = client.post(
        "/api/v1/search", files={"file": ("q.png", png_of(train_images[2]))}, headers={"X-Request-ID": "abc-123"}
    )
    assert response.headers["x-request-id"] == "abc-123"
    assert float(response.headers["x-response-time-ms"]) > 0
    stages = dict(part.split(";dur=") for part in response.headers["server-timing"].split(", "))
    assert {"decode", "preprocess", "encode", "search"} <= set(stages)
    generated = client.get("/api/v1/health", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32
    others = {client.get("/api/v1/health").headers["x-request-id"] for _ in range(20)}
    assert len(others | {generated}) == 21  # each request its own


def test_a_forked_process_makes_request_ids_of_its_own() -> None:
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports one id of its own and leaves at once
        os.write(writer, new_request_id().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    theirs = os.read(reader, 64).decode()
    os.close(reader)
    ours = new_request_id()
    assert len(theirs) == len(ours) == 32 and theirs[:16] != ours[:16]


def test_cors_is_off_by_default_and_configurable(make_client) -> None:
    origin = {"Origin": "https://example.org"}
    assert "access-control-allow-origin" not in make_client().get("/api/v1/health", headers=origin).headers
    allowed = make_client(cors_origins="https://example.org").get("/api/v1/health", headers=origin)
    assert allowed.headers["access-control-allow-origin"] == "https://example.org"


@pytest.mark.parametrize("batching", [True, False])
def test_slow_requests_time_out_with_504(
    make_client, monkeypatch: pytest.MonkeyPatch, full_mnist: dict, batching: bool
) -> None:
    import time

    from app.services.search import SearchService

    client = make_client(request_timeout_s=0.2, batching=batching)
    digit = png_of(full_mnist["train"].images[0])
    original = SearchService.search_images

    def slow(self: SearchService, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SearchService, "search_images", slow)
    response = client.post("/api/v1/search", files={"file": ("a.png", digit)})
    assert response.status_code == 504 and "AESEEK_REQUEST_TIMEOUT_S" in response.json()["message"]
    monkeypatch.setattr(SearchService, "search_images", original)
    time.sleep(1.0)  # the abandoned search finishes; the next one is answered normally
    assert client.post("/api/v1/search", files={"file": ("a.png", digit)}).status_code == 200


def test_overload_is_a_503_with_retry_after(make_client, train_images: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_concurrent_decodes=1, max_waiting_decodes=0)
    runtime = client.app.state.runtime
    files = [("files", ("a.png", png_of(train_images[0])))]
    with runtime.admitted("decode"):  # another request holds the only decode slot
        response = client.post("/api/v1/search/batch", files=files)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["code"] == "overloaded"
    assert client.post("/api/v1/search/batch", files=files).status_code == 200


def test_a_newline_in_the_path_cannot_forge_a_log_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="aeseek.access"):
        client.get("/api/v1/gallery/1%0A2026-11-29 INFO aeseek.access: GET /admin 200")
    [line] = [record.getMessage() for record in caplog.records if record.name == "aeseek.access"]
    assert "\n" not in line and "\\x0a" in line


def test_a_retry_with_an_idempotency_key_answers_the_first_result(trained_copy: Path, train_images: np.ndarray) -> None:
    files = [("files", ("a.png", png_of(train_images[0])))]
    headers = {**GALLERY_AUTH, "Idempotency-Key": "add-0001"}
    with serve(trained_copy, api_keys="gallery-test-key-0123") as client:
        first = client.post("/api/v1/gallery", files=files, data={"labels": "5"}, headers=headers)
        again = client.post("/api/v1/gallery", files=files, data={"labels": "5"}, headers=headers)
        assert first.status_code == again.status_code == 201 and again.json() == first.json()
        assert again.headers["idempotency-replayed"] == "true" and "idempotency-replayed" not in first.headers
        assert client.get("/api/v1/ready").json()["gallery_size"] == 601  # added once
        other = client.post("/api/v1/gallery", files=files, data={"labels": "6"}, headers=headers)
        assert other.status_code == 422 and "different request" in other.json()["message"]


def test_a_timed_out_add_finishes_once_and_its_retry_gets_the_result(
    trained_copy: Path, train_images: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_add = Runtime.add_to_gallery

    def slow_add(self: Runtime, *args: object) -> object:
        time.sleep(1.0)
        return real_add(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Runtime, "add_to_gallery", slow_add)
    files = [("files", ("a.png", png_of(train_images[0])))]
    headers = {**GALLERY_AUTH, "Idempotency-Key": "slow-add"}
    with serve(trained_copy, api_keys="gallery-test-key-0123", request_timeout_s=0.3) as client:
        timed_out = client.post("/api/v1/gallery", files=files, data={"labels": "5"}, headers=headers)
        assert timed_out.status_code == 504
        retry = client.post("/api/v1/gallery", files=files, data={"labels": "5"}, headers=headers)
        assert retry.status_code == 409 and "still running" in retry.json()["message"]
        deadline = time.monotonic() + 30
        while retry.status_code == 409 and time.monotonic() < deadline:
            time.sleep(0.2)
            retry = client.post("/api/v1/gallery", files=files, data={"labels": "5"}, headers=headers)
        assert retry.status_code == 201 and retry.headers["idempotency-replayed"] == "true"
        assert client.get("/api/v1/ready").json()["gallery_size"] == 601  # the work happened once
