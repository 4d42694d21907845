"""A running `stencil serve` on the embedded default (it runs the requests too), shared by the
API tests that need requests to finish; webhooks to loopback allowed, retried fast."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api._server import ApiServer, api_server
from tests.fleet import fleet_env


@pytest.fixture(scope="session")
def running_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    home = tmp_path_factory.mktemp("api-running")
    env = fleet_env(
        home=home / "home",
        STENCIL_WEBHOOK_ALLOW_LOOPBACK="true",
        STENCIL_WEBHOOK_RETRY_S="[0, 0.3, 0.3, 0.3]",
    )
    with api_server(env, home) as running:
        yield running
