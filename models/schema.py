"""Make sure the database schema is current before a command uses it.

Every command checks the schema, so the usual case (already at head) is made cheap: one
``SELECT`` of ``alembic_version`` compared with the head read from the migration files' own
``revision = "..."`` lines. Alembic is imported only when that quick look does not say "current"
(a new database, an old one, or files the quick look cannot read), and then decides.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

import migrations
from stencil.errors import ConfigError

VERSIONS_DIR = Path(migrations.__file__).resolve().parent / "versions"
_REVISION = re.compile(r'^(?P<name>revision|down_revision)\s*=\s*(?:"(?P<value>[^"]+)"|None)', re.M)


def head_revision() -> str | None:
    """The head according to Alembic (imports Alembic and every migration)."""
    from alembic.script import ScriptDirectory

    from models.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@lru_cache(maxsize=1)
def head_from_files(folder: Path = VERSIONS_DIR) -> str | None:
    """The one revision no other migration revises, from the files' text; None if unclear."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in folder.glob("*.py"):
        found = {m["name"]: m["value"] for m in _REVISION.finditer(path.read_text("utf-8"))}
        if found.get("revision"):
            revisions.add(str(found["revision"]))
        if found.get("down_revision"):
            revised.add(str(found["down_revision"]))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the database; None when there is none (or no table yet)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return None
    return rows[0] if len(rows) == 1 else None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_schema(engine: Engine) -> None:
    """Upgrade an embedded SQLite file in place; ask for `stencil db upgrade` elsewhere."""
    quick_head = head_from_files()
    if quick_head is not None and stored_revision(engine) == quick_head:
        return
    if current_revision(engine) == head_revision():
        return
    if engine.dialect.name == "sqlite":
        from models.migrate import upgrade

        upgrade(engine)
        return
    raise ConfigError(
        "the database schema is not current: run `stencil db upgrade` (or the migrate service)"
    )
