"""Reading uploaded files within the configured size limit."""

from __future__ import annotations

from fastapi import UploadFile

from app.settings import Settings
from models.errors import ImageTooLargeError


def read_upload(file: UploadFile, settings: Settings) -> bytes:
    """The bytes of an upload, or a 413 when it is over AESEEK_MAX_UPLOAD_BYTES (read no further)."""
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLargeError(
            f"the upload is over the limit of {settings.max_upload_bytes} bytes (AESEEK_MAX_UPLOAD_BYTES)"
        )
    return data
