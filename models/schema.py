"""Make sure the database schema is current before a command uses it."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from models.migrate import alembic_config, upgrade
from stencil.errors import ConfigError


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_schema(engine: Engine) -> None:
    """Upgrade an embedded SQLite file in place; ask for `stencil db upgrade` elsewhere."""
    if current_revision(engine) == head_revision():
        return
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    raise ConfigError(
        "the database schema is not current: run `stencil db upgrade` (or the migrate service)"
    )
