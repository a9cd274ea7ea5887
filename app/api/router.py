"""Every route module in one place: the API under /api/v1 (reads obey read access), the site at the root."""

from fastapi import APIRouter

from app.api.routes import docs, gallery, health, jobs, metrics, search, trained_models, training, variants, web
from app.api.security import ReadAccess

api_router = APIRouter()
api_router.include_router(health.router)
for module in (search, gallery, training, variants, jobs, trained_models):
    api_router.include_router(module.router, dependencies=[ReadAccess])

site_router = APIRouter()
site_router.include_router(metrics.router)
site_router.include_router(web.router)
site_router.include_router(docs.router)
