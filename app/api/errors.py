"""Every error response in one format, and the one table that turns error codes into HTTP statuses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.schemas import ErrorBody
from models.errors import AeseekError, ErrorCode

logger = logging.getLogger("aeseek")

# What an overloaded server asks a client to wait before retrying: its work is milliseconds long.
RETRY_AFTER_S = 1
STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.EMPTY_FILE: 400,
    ErrorCode.INVALID_IMAGE: 400,
    ErrorCode.CORRUPT_IMAGE: 400,
    ErrorCode.UNSUPPORTED_IMAGE: 415,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.UPLOAD_TOO_LARGE: 413,
    ErrorCode.NO_INK: 422,
    ErrorCode.UNKNOWN_VARIANT: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.MUTATIONS_DISABLED: 403,
    ErrorCode.QUEUE_FULL: 429,
    ErrorCode.HTTP_ERROR: 400,
    ErrorCode.TRAINING_DIVERGED: 422,
    ErrorCode.TRAINING_STOPPED: 409,
    ErrorCode.NOT_READY: 503,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.DISK_BUDGET_EXCEEDED: 507,
    ErrorCode.JOBS_DISABLED: 503,
    ErrorCode.DATASET_UNAVAILABLE: 503,
    ErrorCode.CHECKPOINT_CORRUPT: 500,
    ErrorCode.GALLERY_CORRUPT: 500,
    ErrorCode.MODEL_MISMATCH: 500,
    ErrorCode.SERVER_MISCONFIGURED: 500,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.TIMEOUT: 504,
}


def _codes_answering(status: int) -> str:
    return ", ".join(f"`{code.value}`" for code, value in STATUS_BY_CODE.items() if value == status)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": f"{description} Codes: {_codes_answering(status)}."}
    for status, description in {
        400: "Empty, truncated or corrupt image.",
        401: "Missing or malformed `Authorization: Bearer <key>` header.",
        403: "The key is not valid, or no key is configured for mutating endpoints.",
        404: "Unknown id.",
        409: "The request conflicts with the current state (e.g. cancelling a finished job).",
        413: "Upload or image over the size limits.",
        415: "Not an image in an accepted format.",
        422: "Invalid parameters, or an image with no ink.",
        500: "The server's own saved state (a model or gallery file) is corrupt, or it is misconfigured.",
        507: "The write would take the data directory past AESEEK_DISK_BUDGET_BYTES; delete models or run aeseek gc.",
        503: "No model or gallery loaded yet, at the limit of concurrent work (retry after `Retry-After`"
        " seconds), training jobs disabled, or the dataset unavailable.",
    }.items()
}


def status_of(error: AeseekError) -> int:
    """The HTTP status of a domain error."""
    return STATUS_BY_CODE[error.code]


def error_response(status: int, code: ErrorCode, message: str, details: Any = None) -> JSONResponse:
    """A JSON response in the shared error format."""
    body = ErrorBody(code=code, message=message, details=details)
    return JSONResponse(status_code=status, content=body.model_dump(mode="json"))


def _describe_validation(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the shared format."""

    @app.exception_handler(AeseekError)
    async def handle_domain_error(request: Request, error: AeseekError) -> JSONResponse:
        status = status_of(error)
        if status >= 500 and status != 503:  # the server is at fault; 503 is "not yet"
            logger.error("%s on %s %s: %s", error.code.value, request.method, request.url.path, error)
        response = error_response(status, error.code, str(error), error.details)
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        if error.code is ErrorCode.OVERLOADED:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(RequestValidationError)
    async def handle_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {key: value for key, value in item.items() if key in ("loc", "msg", "type")} for item in error.errors()
        ]
        return error_response(422, ErrorCode.VALIDATION_ERROR, _describe_validation(errors), errors)

    @app.exception_handler(StarletteHTTPException)
    async def handle_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
            error.status_code, ErrorCode.HTTP_ERROR
        )
        return error_response(error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def handle_unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, ErrorCode.INTERNAL_ERROR, "an unexpected error occurred; it has been logged")
