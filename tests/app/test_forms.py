"""The search route's own multipart parsing: what Starlette's form parser would accept, and clear 4xx otherwise."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import ApiError
from app.forms import parse_file_field
from models.errors import ImageTooLargeError

BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart body of (name, filename or None for a plain field, data) parts."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def test_the_file_field_is_found_among_others() -> None:
    body = form(("k", None, b"5"), ("file", "digit.png", b"\x89PNG\r\n--not-a-boundary\r\n"), ("x", "y.txt", b"z"))
    assert parse_file_field(body, CONTENT_TYPE, "file", 1000) == b"\x89PNG\r\n--not-a-boundary\r\n"


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000))
def test_any_bytes_come_back_unchanged(data: bytes) -> None:
    # Bytes that merely look like a boundary are data unless the exact delimiter line appears.
    if f"\r\n--{BOUNDARY}".encode() in b"\r\n" + data + b"\r\n":
        return
    assert parse_file_field(form(("file", "a.bin", data)), CONTENT_TYPE, "file", 10_000) == data


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (form(("k", None, b"3")), CONTENT_TYPE, "form field `file` is missing"),
        (form(("file", None, b"text")), CONTENT_TYPE, "plain value, not a file"),
        (form(("image", "a.png", b"123")), CONTENT_TYPE, "form field `file` is missing"),
        (b"just bytes", "application/octet-stream", "not a form"),
        (b"just bytes", "", "not typed"),
        (b"--other\r\n", "multipart/form-data", "no boundary"),
        (b"garbage without any boundary", CONTENT_TYPE, "malformed"),
    ],
)
def test_what_is_not_a_file_field_is_a_422_that_says_so(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_file_field(body, content_type, "file", 1000)
    assert raised.value.code == "validation_error"
    assert message in str(raised.value) and "`file`" in str(raised.value)


def test_a_file_over_the_limit_is_a_413() -> None:
    with pytest.raises(ImageTooLargeError, match="AESEEK_MAX_UPLOAD_BYTES"):
        parse_file_field(form(("file", "a.png", b"x" * 101)), CONTENT_TYPE, "file", 100)
    assert parse_file_field(form(("file", "a.png", b"x" * 100)), CONTENT_TYPE, "file", 100) == b"x" * 100
