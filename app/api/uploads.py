"""The one upload reader: file fields of multipart/form-data bodies, under one size limit.

`read_upload` reads an `UploadFile` that FastAPI parsed (batch search, gallery add, model
pictures). `read_file_field` serves the search hot path: Starlette's form parsing spools every
part into an `UploadFile` (a temporary-file object), which for a query image of a few hundred
bytes costs more than decoding the image. There the body is read once and fed to
python-multipart's streaming parser (the parser Starlette itself uses), keeping only the bytes
of the field asked for. Every oversize upload is the same 413 `upload_too_large`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request, UploadFile
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from models.errors import InvalidRequestError, UploadTooLargeError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks


# A search form has one file field; a few more parts are tolerated (clients add fields), not thousands.
MAX_FORM_PARTS = 16
# The body is fed to the parser in slices this large, yielding to the event loop between them.
PARSE_SLICE_BYTES = 64 * 1024


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    header_name: bytes = b""
    data_bytes: int = 0


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


class FileFieldParser:
    """Streams a multipart body into its parts, refusing more than MAX_FORM_PARTS parts.

    (python-multipart itself refuses a part header over its own limit.)

    Fed slice by slice (`feed`), so a caller on the event loop can yield between slices; the
    bytes of any part are kept only up to one byte past `max_bytes`.
    """

    def __init__(self, content_type: str, name: str, max_bytes: int) -> None:
        media_type, options = parse_options_header(content_type)
        if media_type != b"multipart/form-data":
            raise _missing(name, f"the request body is {media_type.decode('latin-1') or 'not typed'}, not a form")
        boundary = options.get(b"boundary")
        if not boundary:
            raise _missing(name, "the multipart Content-Type has no boundary")
        self.name, self.max_bytes = name, max_bytes
        self.parts: list[_Part] = []
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_part_data": self._data,
        }
        self._parser = MultipartParser(boundary, callbacks)

    def _begin(self) -> None:
        if len(self.parts) >= MAX_FORM_PARTS:
            raise InvalidRequestError(
                f"the form has more than {MAX_FORM_PARTS} parts; send the image in one file field `{self.name}`"
            )
        self.parts.append(_Part())

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        name = part.header_name.lower()
        part.headers[name] = part.headers.get(name, b"") + data[start:end]

    def _header_end(self) -> None:
        self.parts[-1].header_name = b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        if part.data_bytes <= self.max_bytes:  # past the limit only the count grows: check_size refuses it
            part.chunks.append(data[start : min(end, start + self.max_bytes + 1 - part.data_bytes)])
        part.data_bytes += end - start

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the body."""
        try:
            self._parser.write(data)
        except MultipartParseError as error:
            raise _missing(self.name, f"the multipart body is malformed ({error})") from None

    def file(self) -> bytes:
        """After the whole body: the bytes of file field `name` (422 when missing, 413 when over the limit)."""
        try:
            self._parser.finalize()
        except MultipartParseError as error:
            raise _missing(self.name, f"the multipart body is malformed ({error})") from None
        for part in self.parts:
            _, disposition = parse_options_header(part.headers.get(b"content-disposition", b""))
            if disposition.get(b"name", b"").decode("latin-1") != self.name:
                continue
            if b"filename" not in disposition:
                raise _missing(self.name, f"form field `{self.name}` is a plain value, not a file")
            return check_size(b"".join(part.chunks), self.max_bytes)  # kept up to one byte past the limit
        raise _missing(self.name, f"form field `{self.name}` is missing")


def parse_file_field(body: bytes, content_type: str, name: str, max_bytes: int) -> bytes:
    """The bytes of the file in form field `name` of a whole body (see FileFieldParser)."""
    parser = FileFieldParser(content_type, name, max_bytes)
    parser.feed(body)
    return parser.file()


async def read_file_field(request: Request, name: str, max_bytes: int) -> bytes:
    """File field `name` of the request's form, parsed as the body streams in (the middleware caps its size).

    The parser gets at most PARSE_SLICE_BYTES at a time and the event loop runs between slices,
    so even a body of tiny parts (cut off at MAX_FORM_PARTS) never holds other requests back.
    """
    parser = FileFieldParser(request.headers.get("content-type", ""), name, max_bytes)
    async for chunk in request.stream():
        for start in range(0, len(chunk), PARSE_SLICE_BYTES):
            if start:
                await asyncio.sleep(0)
            parser.feed(chunk[start : start + PARSE_SLICE_BYTES])
    return parser.file()
