"""The upload boundary: multipart parsing, size checks, and a corpus of bad files each with its own 4xx."""

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.api.uploads import MAX_FORM_PARTS, parse_file_field
from models.data.preprocessing import decode_image
from models.errors import ImageTooLargeError, InvalidRequestError, UploadTooLargeError
from tests.data.make_bad_inputs import CORPUS, build
from tests.helpers import MULTIPART_BOUNDARY, MULTIPART_CONTENT_TYPE, encode, multipart, png_of

MANIFEST = json.loads((CORPUS / "manifest.json").read_text())


REQUEST_CASES = [
    ("no body", {}, 422, "validation_error"),
    ("no file field", {"data": {"k": "3"}}, 422, "validation_error"),
    ("wrong field name", {"files": {"image": ("q.png", b"123")}}, 422, "validation_error"),
    ("file sent as a plain form field", {"data": {"file": "not a file"}}, 422, "validation_error"),
]


def test_the_file_field_is_found_among_others() -> None:
    body = multipart(("k", None, b"5"), ("file", "digit.png", b"\x89PNG\r\n--not-a-boundary\r\n"), ("x", "y.txt", b"z"))
    assert parse_file_field(body, MULTIPART_CONTENT_TYPE, "file", 1000) == b"\x89PNG\r\n--not-a-boundary\r\n"


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000))
def test_any_bytes_come_back_unchanged(data: bytes) -> None:
    # Bytes that merely look like a boundary are data unless the exact delimiter line appears.
    if f"\r\n--{MULTIPART_BOUNDARY}".encode() in b"\r\n" + data + b"\r\n":
        return
    assert parse_file_field(multipart(("file", "a.bin", data)), MULTIPART_CONTENT_TYPE, "file", 10_000) == data


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (multipart(("k", None, b"3")), MULTIPART_CONTENT_TYPE, "form field `file` is missing"),
        (multipart(("file", None, b"text")), MULTIPART_CONTENT_TYPE, "plain value, not a file"),
        (multipart(("image", "a.png", b"123")), MULTIPART_CONTENT_TYPE, "form field `file` is missing"),
        (b"just bytes", "application/octet-stream", "not a form"),
        (b"just bytes", "", "not typed"),
        (b"--other\r\n", "multipart/form-data", "no boundary"),
        (b"garbage without any boundary", MULTIPART_CONTENT_TYPE, "malformed"),
    ],
)
def test_what_is_not_a_file_field_is_a_422_that_says_so(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        parse_file_field(body, content_type, "file", 1000)
    assert raised.value.code == "validation_error"
    assert message in str(raised.value) and "`file`" in str(raised.value)


def test_a_file_over_the_limit_is_a_413() -> None:
    with pytest.raises(UploadTooLargeError, match="AESEEK_MAX_UPLOAD_BYTES"):
        parse_file_field(multipart(("file", "a.png", b"x" * 101)), MULTIPART_CONTENT_TYPE, "file", 100)
    assert parse_file_field(multipart(("file", "a.png", b"x" * 100)), MULTIPART_CONTENT_TYPE, "file", 100) == b"x" * 100


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


@pytest.mark.parametrize(("why", "request_args", "status", "code"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_malformed_search_requests(client: TestClient, why: str, request_args: dict, status: int, code: str) -> None:
    response = client.post("/api/v1/search", **request_args)
    assert response.status_code == status, why
    assert response.json()["code"] == code and "file" in response.json()["message"]


def test_non_multipart_body(client: TestClient) -> None:
    response = client.post("/api/v1/search", content=b"\x89PNG", headers={"content-type": "image/png"})
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


def test_corpus_covers_at_least_thirty_kinds() -> None:
    kinds = len(MANIFEST) + len(REQUEST_CASES) + 2 + 6 + 6  # files, requests, sizes, k values, ids
    assert kinds >= 30
    assert Path(CORPUS).is_dir()


def test_a_flood_of_empty_parts_is_cut_off_at_the_part_limit(client: TestClient) -> None:
    # ~800k empty parts in 10 MiB once cost ~8 s of event-loop time; parsing now stops at the 17th part.
    flood = b"--x\r\nA:\r\n\r\n\r\n" * 120_000 + b"--x--\r\n"  # 1.8 MB, under the test limit
    response = client.post("/api/v1/search", content=flood, headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert f"more than {MAX_FORM_PARTS} parts" in response.json()["message"]
    with pytest.raises(InvalidRequestError, match="parts"):
        parse_file_field(flood, "multipart/form-data; boundary=x", "file", 1000)


def test_a_huge_part_header_is_refused() -> None:
    body = multipart(("file", "a.png", b"x")).replace(
        b"Content-Type:", b"X-Pad: " + b"p" * 20_000 + b"\r\nContent-Type:"
    )
    with pytest.raises(InvalidRequestError, match="header size exceeded"):
        parse_file_field(body, MULTIPART_CONTENT_TYPE, "file", 1000)


def float_tiff(values: np.ndarray) -> bytes:
    return encode(Image.fromarray(values.astype(np.float32), mode="F"), "TIFF")


@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_float_tiffs_with_non_finite_pixels_are_searched_or_refused_never_a_500(
    client: TestClient, train_images: np.ndarray, poison: float
) -> None:
    digit = train_images[0].astype(np.float32)
    digit[0, :5] = poison  # a few bad pixels in the corner: the digit is still there
    response = client.post("/api/v1/search", files={"file": ("q.tif", float_tiff(digit))})
    assert response.status_code == 200, response.text
    nothing = np.full((28, 28), poison, dtype=np.float32)
    response = client.post("/api/v1/search", files={"file": ("q.tif", float_tiff(nothing))})
    assert response.status_code == 422 and response.json()["code"] == "no_ink", response.text


def test_a_lab_tiff_is_searched_by_its_lightness(client: TestClient, train_images: np.ndarray) -> None:
    lab = Image.fromarray(train_images[0]).convert("RGB").convert("LAB")
    response = client.post("/api/v1/search", files={"file": ("q.tif", encode(lab, "TIFF"))})
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["id"] == 0


def test_one_exotic_file_in_a_batch_fails_alone(client: TestClient, train_images: np.ndarray) -> None:
    files = [
        ("files", ("nan.tif", float_tiff(np.full((28, 28), np.nan, dtype=np.float32)))),
        ("files", ("ok.png", png_of(train_images[1]))),
    ]
    items = client.post("/api/v1/search/batch", files=files).json()["items"]
    assert [item["status"] for item in items] == [422, 200]
