"""Run Alembic migrations from code (``stencil db upgrade``, tests, the embedded default)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

import migrations


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


MIGRATION_LOCK_KEY = 0x5374656E  # "Sten": one advisory lock for every migrating process


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade to ``revision``; concurrent callers (three first runs at once, two migrate
    services) take turns, and each one after the first finds nothing left to do."""
    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """On a SQLite file, an exclusive lock on a file beside it (released by the OS on exit)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
