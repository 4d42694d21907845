"""The quick schema check every command makes: right when current, Alembic decides otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from models.migrate import downgrade, upgrade
from models.schema import (
    current_revision,
    ensure_schema,
    head_from_files,
    head_revision,
    stored_revision,
)
from stencil.errors import ConfigError


def _engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url)


def test_head_read_from_the_files_is_alembics_head() -> None:
    assert head_from_files() == head_revision()


def test_head_from_files_is_none_when_the_history_branches(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    assert head_from_files(tmp_path) is None
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "b"\n')
    assert head_from_files.__wrapped__(tmp_path) == "c"


def test_embedded_sqlite_is_created_then_upgraded_from_an_old_revision(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 's.db'}")
    assert stored_revision(engine) is None  # no table yet: the quick look says "not current"
    ensure_schema(engine)
    assert stored_revision(engine) == head_revision()
    downgrade(engine, "0002")
    assert stored_revision(engine) == "0002"
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_a_server_database_behind_head_is_not_upgraded_silently(pg_url: str) -> None:
    engine = _engine(pg_url)
    upgrade(engine, "0002")
    with pytest.raises(ConfigError, match="stencil db upgrade"):
        ensure_schema(engine)
    assert stored_revision(engine) == "0002"
    upgrade(engine)
    ensure_schema(engine)  # current: nothing to say
    engine.dispose()
