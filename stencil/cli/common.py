"""What every command needs: settings, a migrated database, storage."""

from __future__ import annotations

from models.db import get_engine
from models.schema import ensure_schema
from stencil.settings import Settings, get_settings
from stencil.storage import open_storage
from stencil.storage.base import Storage


def ready() -> Settings:
    """Settings, with the database checked (and the embedded one migrated)."""
    settings = get_settings()
    ensure_schema(get_engine())
    return settings


def storage_for(settings: Settings) -> Storage:
    return open_storage(settings)
