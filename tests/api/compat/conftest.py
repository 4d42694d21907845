"""One fleet for every compatibility test (Postgres, Redis, moto S3, the Vertex emulator, the API
over TLS, a scheduler and a worker), started once for the package: the machine is small."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stencil.emulator import EmulatorHandle
from tests.api._compat import CompatFleet, compat_fleet
from tests.services import PostgresServer, RedisServer, S3Server


@pytest.fixture(scope="package")
def compat(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    s3_server: S3Server,
    shared_emulator: EmulatorHandle,
) -> Iterator[CompatFleet]:
    home = tmp_path_factory.mktemp("compat")
    with compat_fleet(home, postgres_server, redis_server, s3_server, shared_emulator) as running:
        yield running


@pytest.fixture
def emu(compat: CompatFleet) -> Iterator[EmulatorHandle]:
    """The fleet's emulator, its knobs put back after the test."""
    yield compat.emu
    compat.emu.reset(knobs=True)
