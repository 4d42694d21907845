"""Engines and sessions, built from settings on first use (never at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.pool import NullPool

from stencil.settings import Settings, get_settings


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per database URL in this process."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@event.listens_for(Session, "do_orm_execute")
def _no_session_sync(state: ORMExecuteState) -> None:
    """Bulk UPDATE/DELETE statements don't update objects already loaded in the session: the
    queries here re-read what they need, and skipping the sync saves work on every hot path."""
    if state.is_update or state.is_delete:
        state.update_execution_options(synchronize_session=False)


def get_engine() -> Engine:
    settings = get_settings()
    if not settings.database_url:
        settings.ensure_dirs()
    return engine_for(settings.resolved_database_url)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def probe_engine(settings: Settings, *, timeout_s: int = 5) -> Engine:
    """An engine for a health check: the embedded SQLite engine as usual; for a server, no pool
    and a connect timeout, so an unreachable database answers within ``timeout_s``."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        if not settings.database_url:
            settings.ensure_dirs()
        return engine_for(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    connect_args = {"connect_timeout": timeout_s} if url.startswith("postgresql") else {}
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)
