"""Health: the only route without an API key."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from models.db import session_scope

router = APIRouter(tags=["health"])


@router.get("/healthz")
def health() -> dict[str, str]:
    """`{"status": "ok"}` when the record answers."""
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok"}
