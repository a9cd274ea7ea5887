"""Every error aeseek raises on purpose: one enumerated code each, statuses mapped in `app/api/errors.py`.

The libraries and services raise these domain errors; only the HTTP layer turns a code into
a status, from one table (a test checks that every code has a status and every error a code).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    """Machine-readable kinds of error, as clients see them in `ErrorBody.code`."""

    # The request or its upload is at fault (4xx).
    VALIDATION_ERROR = "validation_error"
    EMPTY_FILE = "empty_file"
    INVALID_IMAGE = "invalid_image"
    CORRUPT_IMAGE = "corrupt_image"
    UNSUPPORTED_IMAGE = "unsupported_image"
    IMAGE_TOO_LARGE = "image_too_large"
    UPLOAD_TOO_LARGE = "upload_too_large"
    NO_INK = "no_ink"
    UNKNOWN_VARIANT = "unknown_variant"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    MUTATIONS_DISABLED = "mutations_disabled"
    QUEUE_FULL = "queue_full"
    HTTP_ERROR = "http_error"
    TRAINING_DIVERGED = "training_diverged"
    TRAINING_STOPPED = "training_stopped"
    # The server is not ready or not configured for the request (503).
    NOT_READY = "not_ready"
    OVERLOADED = "overloaded"
    DISK_BUDGET_EXCEEDED = "disk_budget_exceeded"
    JOBS_DISABLED = "jobs_disabled"
    DATASET_UNAVAILABLE = "dataset_unavailable"
    # The server's own state or configuration is at fault (5xx).
    CHECKPOINT_CORRUPT = "checkpoint_corrupt"
    GALLERY_CORRUPT = "gallery_corrupt"
    MODEL_MISMATCH = "model_mismatch"
    SERVER_MISCONFIGURED = "server_misconfigured"
    INTERNAL_ERROR = "internal_error"
    TIMEOUT = "timeout"


class AeseekError(Exception):
    """Base class of every error aeseek raises on purpose; `code` names the kind for clients."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


class InvalidRequestError(AeseekError):
    """A parameter or field of the request is invalid; the message names it."""

    code = ErrorCode.VALIDATION_ERROR


class NotFoundError(AeseekError):
    """No such model, gallery item or job."""

    code = ErrorCode.NOT_FOUND


class ConflictError(AeseekError):
    """The request conflicts with the current state (cancelling a finished job, sampling a non-VAE)."""

    code = ErrorCode.CONFLICT


class NotReadyError(AeseekError):
    """No active model or gallery yet."""

    code = ErrorCode.NOT_READY


class OverloadedError(AeseekError):
    """The service is at its limit of concurrent work; the client should retry shortly."""

    code = ErrorCode.OVERLOADED


class DiskBudgetError(AeseekError):
    """A write would take the data directory past its disk budget."""

    code = ErrorCode.DISK_BUDGET_EXCEEDED


class DatasetError(AeseekError):
    """A dataset is missing, corrupt or fails its checksum."""

    code = ErrorCode.DATASET_UNAVAILABLE


class CheckpointError(AeseekError):
    """A saved model or training state is missing, corrupt or of an unknown kind (server-side state)."""

    code = ErrorCode.CHECKPOINT_CORRUPT


class ImageError(AeseekError):
    """An uploaded file cannot be used as a query; the message says why."""

    code = ErrorCode.INVALID_IMAGE


class EmptyUploadError(ImageError):
    """The upload has no bytes."""

    code = ErrorCode.EMPTY_FILE


class UnsupportedImageError(ImageError):
    """The upload is not an image in an accepted format."""

    code = ErrorCode.UNSUPPORTED_IMAGE


class CorruptImageError(ImageError):
    """The image header or data is truncated or corrupt."""

    code = ErrorCode.CORRUPT_IMAGE


class ImageTooLargeError(ImageError):
    """The image declares more pixels than the limit allows."""

    code = ErrorCode.IMAGE_TOO_LARGE


class UploadTooLargeError(ImageError):
    """The upload (or the request body) has more bytes than the limit allows."""

    code = ErrorCode.UPLOAD_TOO_LARGE


class NoInkError(ImageError):
    """An image has no foreground strokes (blank or constant)."""

    code = ErrorCode.NO_INK
