"""Migrations: upgrade on an empty database, no drift from the models, down and up again."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from models.migrate import downgrade, upgrade
from models.tables import Base

TABLES = {"batches", "items", "attempts", "fleet_window"}


def _engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url)


def _check_cycle(engine: Engine) -> None:
    upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    downgrade(engine)
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'm.db'}")
    _check_cycle(engine)
    engine.dispose()


def test_migrations_on_postgres(pg_url: str) -> None:
    engine = _engine(pg_url)
    _check_cycle(engine)
    engine.dispose()


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()
