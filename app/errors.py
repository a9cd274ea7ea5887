"""Every error response in one format, and the one place domain errors become HTTP statuses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.schemas import ErrorBody
from models.errors import AeseekError

logger = logging.getLogger("aeseek")

STATUS_BY_CODE = {
    "empty_file": 400,
    "corrupt_image": 400,
    "invalid_image": 400,
    "unsupported_image": 415,
    "image_too_large": 413,
    "upload_too_large": 413,
    "no_ink": 422,
    "validation_error": 422,
    "not_found": 404,
    "not_ready": 503,
    "unauthenticated": 401,
    "forbidden": 403,
    "mutations_disabled": 403,
    "server_misconfigured": 500,
    "timeout": 504,
    "jobs_disabled": 503,
    "model_mismatch": 409,
    "conflict": 409,
    "queue_full": 429,
    "unknown_variant": 422,
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Empty, truncated or corrupt image.",
        401: "Missing or malformed `Authorization: Bearer <key>` header.",
        403: "The key is not valid, or no key is configured for mutating endpoints.",
        404: "Unknown id.",
        409: "The request conflicts with the current state (e.g. cancelling a finished job).",
        413: "Upload or image over the size limits.",
        415: "Not an image in an accepted format.",
        422: "Invalid parameters, or an image with no ink.",
        503: "No model or gallery loaded yet.",
    }.items()
}


class ApiError(AeseekError):
    """An error raised by a route with its code; the status comes from STATUS_BY_CODE."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    """A JSON response in the shared error format."""
    body = ErrorBody(code=code, message=message, details=details)
    return JSONResponse(status_code=status, content=body.model_dump())


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
        status = STATUS_BY_CODE.get(error.code, 400)
        response = error_response(status, error.code, str(error), getattr(error, "details", None))
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def handle_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {key: value for key, value in item.items() if key in ("loc", "msg", "type")} for item in error.errors()
        ]
        return error_response(422, "validation_error", _describe_validation(errors), errors)

    @app.exception_handler(StarletteHTTPException)
    async def handle_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail))

    @app.exception_handler(Exception)
    async def handle_unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
