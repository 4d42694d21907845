"""The FastAPI application factory (``uvicorn --factory api.app:create_app``).

The app runs on the settings, record and storage the CLI uses. Route functions are plain ``def``
on the existing SQLAlchemy engine (FastAPI runs them in its thread pool); the submit route reads
its upload asynchronously, then submits in the pool.
"""

from __future__ import annotations

from fastapi import FastAPI

from api import compat, problems
from api.links import files_secret
from api.routes import control, files, gallery, health, items, requests, webhooks
from models.db import get_engine
from models.schema import ensure_schema
from stencil.settings import Settings, get_settings
from stencil.storage import open_storage

DESCRIPTION = """
Submit a manifest, keep the `request_id`, poll it (or receive a webhook).

Every route but `/healthz` and signed file links needs `Authorization: Bearer <key>` (or
`Key <key>`), a key made by `stencil keys create NAME`. Each request belongs to the key's
tenant; other tenants' ids answer 404. POSTs take an `Idempotency-Key`.

Request statuses: `running`, `paused`, `stopped` (see `stop_reason`), `cancelled`, `done`.
Item statuses: `queued`, `dispatched`, `running`, `waiting`, `succeeded`, `failed`, `blocked`,
`no_image`, `cancelled`, `budget_exhausted`. Errors are `application/problem+json`; bad input
lists every problem with its place (file, row, field).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    ensure_schema(get_engine())  # the embedded SQLite is migrated; a server must be current
    app = FastAPI(title="Stencil", version="1", description=DESCRIPTION)
    app.state.settings = settings
    app.state.storage = open_storage(settings)
    app.state.files_secret = files_secret(settings)
    problems.install(app)
    for module in (health, requests, items, control, webhooks, files, gallery):
        app.include_router(module.router)
    for router in compat.routers():  # fal, Replicate, 302.AI: their protocols, not our schema
        app.include_router(router, include_in_schema=False)
    return app
