"""The one upload reader: file fields of multipart/form-data bodies, under one size limit.

`read_upload` reads an `UploadFile` that FastAPI parsed (batch search, gallery add, model
pictures). `read_file_field` serves the search hot path: Starlette's form parsing spools every
part into an `UploadFile` (a temporary-file object), which for a query image of a few hundred
bytes costs more than decoding the image. There the body is read once and fed to
python-multipart's streaming parser (the parser Starlette itself uses), keeping only the bytes
of the field asked for. Every oversize upload is the same 413 `upload_too_large`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request, UploadFile
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from models.errors import InvalidRequestError, UploadTooLargeError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    header_name: bytes = b""


def file_field_schema(name: str, description: str) -> dict[str, Any]:
    """OpenAPI requestBody for a form with one required file field (Swagger UI shows a file picker)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [name],
                        "properties": {
                            name: {"type": "string", "format": "binary", "description": description},
                        },
                    }
                }
            },
        }
    }


def check_size(data: bytes, max_bytes: int) -> bytes:
    """The upload itself, or UploadTooLargeError (413 `upload_too_large`) when over `max_bytes`."""
    if len(data) > max_bytes:
        raise UploadTooLargeError(f"the upload is over the limit of {max_bytes} bytes (AESEEK_MAX_UPLOAD_BYTES)")
    return data


def read_upload(file: UploadFile, max_bytes: int) -> bytes:
    """The bytes of a parsed upload, reading no further than one byte past the limit."""
    return check_size(file.file.read(max_bytes + 1), max_bytes)


def _missing(name: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{why}; send the image as multipart/form-data in a file field named `{name}` (curl -F {name}=@digit.png ...)",
    )


def _parse_parts(body: bytes, boundary: bytes) -> list[_Part]:
    parts: list[_Part] = []

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        parts[-1].header_name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        name = part.header_name.lower()
        part.headers[name] = part.headers.get(name, b"") + data[start:end]

    def on_header_end() -> None:
        parts[-1].header_name = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].chunks.append(data[start:end])

    callbacks: MultipartCallbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
    }
    parser = MultipartParser(boundary, callbacks)
    parser.write(body)
    parser.finalize()
    return parts


def parse_file_field(body: bytes, content_type: str, name: str, max_bytes: int) -> bytes:
    """The bytes of the file in form field `name`: 422 when it is missing, 413 when over `max_bytes`."""
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        raise _missing(name, f"the request body is {media_type.decode('latin-1') or 'not typed'}, not a form")
    boundary = options.get(b"boundary")
    if not boundary:
        raise _missing(name, "the multipart Content-Type has no boundary")
    try:
        parts = _parse_parts(body, boundary)
    except MultipartParseError as error:
        raise _missing(name, f"the multipart body is malformed ({error})") from None
    for part in parts:
        _, disposition = parse_options_header(part.headers.get(b"content-disposition", b""))
        if disposition.get(b"name", b"").decode("latin-1") != name:
            continue
        if b"filename" not in disposition:
            raise _missing(name, f"form field `{name}` is a plain value, not a file")
        return check_size(b"".join(part.chunks), max_bytes)
    raise _missing(name, f"form field `{name}` is missing")


async def read_file_field(request: Request, name: str, max_bytes: int) -> bytes:
    """Read the request body (the size-limit middleware guards it) and return file field `name`."""
    body = await request.body()
    return parse_file_field(body, request.headers.get("content-type", ""), name, max_bytes)
