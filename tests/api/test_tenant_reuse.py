"""Reuse stays within a tenant: one tenant is never handed an image another tenant paid for,
while a tenant's own identical request is still completed by reference at no cost."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api._server import ApiServer, api_server, manifest, wait_for
from tests.cli import cli_json
from tests.fleet import fleet_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    home = tmp_path_factory.mktemp("tenant-reuse")
    with api_server(fleet_env(home=home / "home"), home) as running:  # runs what it gets
        yield running


def _done(client: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    answer = client.post("/v1/requests", json=body)
    assert answer.status_code == 202, answer.text
    request_id = answer.json()["request_id"]
    wait_for(
        lambda: client.get(f"/v1/requests/{request_id}").json()["status"] == "done",
        what=f"{request_id} done",
    )
    return dict(answer.json())


def _reused_from(server: ApiServer, request_id: object) -> list[object]:
    view = cli_json("poll", str(request_id), "--items", env=server.env)
    return [item["reused_from"] for item in view["items"]]


def test_identical_requests_reuse_within_a_tenant_only(server: ApiServer) -> None:
    alpha = server.client(server.key("alpha"))
    beta = server.client(server.key("beta"))
    body = manifest([{"sku": "same-1"}, {"sku": "same-2"}], name="same")
    first = _done(alpha, body)
    again = _done(alpha, body)
    other = _done(beta, body)
    assert first["reused"] == 0 and again["reused"] == 2  # alpha's own images, at $0
    assert other["reused"] == 0  # beta is not handed alpha's images, at submit...
    assert _reused_from(server, other["request_id"]) == [None, None]  # ...nor at run time
