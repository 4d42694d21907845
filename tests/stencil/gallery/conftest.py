from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from models.db import get_engine, session_scope
from models.schema import ensure_schema
from stencil.storage.local import LocalStorage


@pytest.fixture
def store(stencil_env: Path) -> LocalStorage:
    return LocalStorage(stencil_env / "output")


@pytest.fixture
def session(stencil_env: Path) -> Iterator[Session]:
    """A session on a migrated embedded database (committed at the end of the test)."""
    ensure_schema(get_engine())
    with session_scope() as session:
        yield session
