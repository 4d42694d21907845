"""The OpenAPI schema exercised by schemathesis against the running app (`stencil serve` in a
child process): no 5xx for any generated input, and every answer matches the schema."""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from schemathesis import checks

from tests.api._server import ApiServer, api_server
from tests.fleet import fleet_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    home = tmp_path_factory.mktemp("schema")
    env = fleet_env(home=home / "home", STENCIL_API_SUBMITS_PER_MINUTE="100000")
    with api_server(env, home, "--no-run") as running:
        yield running


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_no_server_errors_and_answers_match_the_schema(server: ApiServer) -> None:
    key = server.key("schemathesis")
    schema = schemathesis.openapi.from_url(f"{server.base}/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        exercise()
