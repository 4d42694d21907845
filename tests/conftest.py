"""Shared fixtures: real services on loopback (see tests/services.py) and a clean Stencil env."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from stencil.emulator import EmulatorHandle, start_emulator
from tests.services import (
    S3_ENV_UNSET,
    PostgresServer,
    RedisServer,
    S3Server,
    ServiceUnavailable,
    unavailable,
)


def _started(server: PostgresServer | RedisServer | S3Server, name: str) -> None:
    try:
        server.start()
    except (ServiceUnavailable, OSError) as exc:
        server.stop()
        unavailable(f"{name} unavailable: {exc}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A Postgres for the whole session (own cluster when possible; ``.restart()`` works then)."""
    server = PostgresServer()
    _started(server, "Postgres")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis for the whole session, without persistence (``.restart()`` empties it)."""
    server = RedisServer()
    _started(server, "Redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 endpoint for the whole session (``.url``, ``.env``, ``.client()``)."""
    server = S3Server()
    _started(server, "S3 (moto)")
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database for this test, dropped afterwards."""
    name = f"t_{os.urandom(6).hex()}"
    try:
        url = postgres_server.create_database(name)
    except psycopg.Error as exc:
        unavailable(f"cannot create a test database: {exc}")
    yield url
    with contextlib.suppress(psycopg.Error):
        postgres_server.drop_database(name)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session Redis, emptied before this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """boto3 credentials for the moto endpoint, set in this process's environment."""
    for name in S3_ENV_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server.env


@pytest.fixture
def s3_bucket(s3_server: S3Server, s3_env: dict[str, str]) -> tuple[str, str]:
    """A fresh bucket for this test: ``(endpoint_url, bucket)``; boto3 env is set."""
    return s3_server.url, s3_server.create_bucket()


@pytest.fixture
def stencil_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Stencil settings from a clean environment: only ``STENCIL_DATA_DIR`` (returned) is set."""
    from models import db
    from stencil.settings import get_settings

    for name in list(os.environ):
        if name.startswith("STENCIL_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("STENCIL_DATA_DIR", str(home))
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    get_settings.cache_clear()
    yield home
    with contextlib.suppress(Exception):
        db.engine_for(get_settings().resolved_database_url).dispose()
    get_settings.cache_clear()
    db.engine_for.cache_clear()


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[EmulatorHandle]:
    """One Vertex emulator for the unit tests of the provider and the emulator itself."""
    with start_emulator() as handle:
        yield handle


@pytest.fixture
def emu(shared_emulator: EmulatorHandle) -> EmulatorHandle:
    """The shared emulator with its counters zeroed and its starting knobs back."""
    shared_emulator.reset(knobs=True)
    return shared_emulator
