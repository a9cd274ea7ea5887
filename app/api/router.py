"""All routes of the API, mounted under /api/v1; every route but the probes obeys read access."""

from fastapi import APIRouter

from app.api.routes import gallery, health, jobs, model_pictures, search, trained_models, training
from app.security import ReadAccess

api_router = APIRouter()
api_router.include_router(health.router)
for module in (search, gallery, training, jobs, trained_models, model_pictures):
    api_router.include_router(module.router, dependencies=[ReadAccess])
