"""The OpenAPI document: every error a route can answer is documented with the shared schema."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.settings import Settings

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
# One scheme for operation ids: `<resource>-<action>`, kebab-case, stable across releases (client
# generators turn them into function names). Every route's handler must be listed here.
OPERATION_IDS = {
    "search_by_image": "search",
    "search_batch": "search-batch",
    "search_feedback": "search-feedback",
    "search_similar": "search-similar",
    "get_gallery_item": "gallery-get",
    "get_gallery_image": "gallery-image",
    "get_gallery_neighbours": "gallery-neighbours",
    "add_gallery_images": "gallery-add",
    "remove_gallery_image": "gallery-delete",
    "start_training": "train",
    "list_variants": "variants-list",
    "list_jobs": "jobs-list",
    "get_job": "job-get",
    "cancel_job": "job-cancel",
    "resume_job": "job-resume",
    "get_job_loss_curve": "job-loss-png",
    "list_trained_models": "models-list",
    "get_active_model": "model-active",
    "get_trained_model": "model-get",
    "activate_model": "model-activate",
    "delete_model": "model-delete",
    "get_latent_map": "latent-map",
    "get_latent_map_png": "latent-map-png",
    "reconstruct_image": "model-reconstruct-png",
    "get_loss_curve": "model-loss-png",
    "get_samples": "model-samples-png",
    "get_interpolation": "model-interpolate-png",
    "denoise_image": "model-denoise-png",
    "get_health": "health",
    "get_ready": "ready",
    "get_metrics": "metrics",
}
BINARY = {"type": "string", "format": "binary"}
PROBES = ("/api/v1/health", "/api/v1/ready")


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def operation_id(route: APIRoute) -> str:
    """The route's operation id from OPERATION_IDS (FastAPI's generate_unique_id_function)."""
    if not route.include_in_schema:
        return route.name  # the web page and the docs pages: not operations of the API
    try:
        return OPERATION_IDS[route.name]
    except KeyError:
        raise KeyError(f"route {route.name} ({route.path}) has no operation id: add it to OPERATION_IDS") from None


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Replace FastAPI's document builder with one that adds security, every shared error and the live limits."""
    reads_need_key = settings.require_key_for_reads

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
        )
        components = document.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from AESEEK_API_KEYS, sent as `Authorization: Bearer <key>`.",
        }
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "k":  # checked against the setting, not a constant (app/api/deps.py)
                        parameter["schema"]["maximum"] = settings.max_k
                responses = operation.setdefault("responses", {})
                for answer in responses.values():  # pictures: binary bodies, so generators keep them
                    png = answer.get("content", {}).get("image/png")
                    if png is not None:
                        png["schema"] = BINARY
                if "422" in responses:  # FastAPI's default validation schema: ours is ErrorBody
                    responses["422"] = _error("Invalid parameters or body; the message names the field.")
                if path in PROBES:
                    continue
                if "security" in operation or reads_need_key:  # mutating routes carry WRITE_OPERATION
                    operation["security"] = [{"bearer": []}]
                    responses["401"] = _error("Missing or malformed `Authorization: Bearer <key>`.")
                    responses["403"] = _error("Invalid key, or no key configured on the server.")
                responses.setdefault("503", _error("No model loaded yet, or training jobs disabled."))
                responses.setdefault("504", _error("The request ran longer than AESEEK_REQUEST_TIMEOUT_S."))
                if "requestBody" in operation:
                    responses.setdefault("413", _error("Request body over AESEEK_MAX_UPLOAD_BYTES."))
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
