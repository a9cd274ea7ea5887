"""One file field out of a multipart/form-data body, for the search hot path.

Starlette's form parsing spools every part into an `UploadFile` (a temporary-file object);
for a query image of a few hundred bytes that costs more than decoding the image. Here the
body is read once and fed to python-multipart's streaming parser (the parser Starlette itself
uses), keeping only the bytes of the field asked for. Errors read like FastAPI's own 422s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.errors import ApiError
from models.errors import ImageTooLargeError

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


def _missing(name: str, why: str) -> ApiError:
    return ApiError(
        "validation_error",
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
        data = b"".join(part.chunks)
        if len(data) > max_bytes:
            raise ImageTooLargeError(f"the upload is over the limit of {max_bytes} bytes (AESEEK_MAX_UPLOAD_BYTES)")
        return data
    raise _missing(name, f"form field `{name}` is missing")


async def read_file_field(request: Request, name: str, max_bytes: int) -> bytes:
    """Read the request body (the size-limit middleware guards it) and return file field `name`."""
    body = await request.body()
    return parse_file_field(body, request.headers.get("content-type", ""), name, max_bytes)
