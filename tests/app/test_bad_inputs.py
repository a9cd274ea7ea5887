"""The bad-input corpus against the real service: a clear 4xx each, and the server keeps serving."""

import json
import tracemalloc
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.errors import ImageTooLargeError
from models.preprocessing import decode_image
from tests.data.make_bad_inputs import CORPUS, build

MANIFEST = json.loads((CORPUS / "manifest.json").read_text())


def test_committed_corpus_is_exactly_what_the_script_makes() -> None:
    generated = build()
    committed = {path.name for path in CORPUS.iterdir() if path.name != "manifest.json"}
    assert committed == set(generated), "run `python -m tests.data.make_bad_inputs`"
    for name, (data, _) in generated.items():
        assert (CORPUS / name).read_bytes() == data, f"{name} differs: run `python -m tests.data.make_bad_inputs`"


@pytest.mark.parametrize("case", MANIFEST, ids=[case["file"] for case in MANIFEST])
def test_each_file_gets_its_status_and_code(client: TestClient, case: dict) -> None:
    data = (CORPUS / case["file"]).read_bytes()
    response = client.post("/api/v1/search", files={"file": (case["upload_name"], data, case["content_type"])})
    assert response.status_code == case["status"], (case["why"], response.text)
    body = response.json()
    if case["code"] is None:
        assert len(body["results"]) == 10
    else:
        assert body["code"] == case["code"] and body["message"], case["why"]
        assert "Traceback" not in body["message"]
    assert client.get("/api/v1/health").status_code == 200


def test_a_bomb_is_refused_without_allocating_its_pixels() -> None:
    data = (CORPUS / "bomb.png").read_bytes()
    tracemalloc.start()
    with pytest.raises(ImageTooLargeError):
        decode_image(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000  # 2.5 billion pixels would need 2.5 GB


REQUEST_CASES = [
    ("no body", {}, 422, "validation_error"),
    ("no file field", {"data": {"k": "3"}}, 422, "validation_error"),
    ("wrong field name", {"files": {"image": ("q.png", b"123")}}, 422, "validation_error"),
    ("file sent as a plain form field", {"data": {"file": "not a file"}}, 422, "validation_error"),
]


@pytest.mark.parametrize(("why", "request_args", "status", "code"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_malformed_search_requests(client: TestClient, why: str, request_args: dict, status: int, code: str) -> None:
    response = client.post("/api/v1/search", **request_args)
    assert response.status_code == status, why
    assert response.json()["code"] == code and "file" in response.json()["message"]


def test_non_multipart_body(client: TestClient) -> None:
    response = client.post("/api/v1/search", content=b"\x89PNG", headers={"content-type": "image/png"})
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


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


@pytest.mark.parametrize("k", ["abc", "0", "101", "-1", "1e3", ""])
def test_bad_k(client: TestClient, k: str) -> None:
    data = (CORPUS / "rgba-ink.png").read_bytes()
    response = client.post(f"/api/v1/search?k={k}", files={"file": ("q.png", data)})
    assert response.status_code == 422 and "k" in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/gallery/123456789", 404),
        ("/api/v1/gallery/-5", 422),
        ("/api/v1/gallery/99999999999999999999999", 422),
        ("/api/v1/gallery/1/image?scale=0", 422),
        ("/api/v1/models/not-a-version", 404),
        ("/api/v1/models/..%2F..%2Fetc/loss.png", 404),
    ],
)
def test_unknown_and_malformed_ids(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.json()["code"] in ("not_found", "validation_error")


def test_corpus_covers_at_least_thirty_kinds() -> None:
    kinds = len(MANIFEST) + len(REQUEST_CASES) + 2 + 6 + 6  # files, requests, sizes, k values, ids
    assert kinds >= 30
    assert Path(CORPUS).is_dir()
