"""The HTTP contract on the embedded default, with nothing running the requests (`--no-run`),
so every request stays where the test put it: bad input, dry runs, idempotency, tenancy, rate
limits and control."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api._server import ApiServer, api_server, manifest
from tests.cli import cli_json
from tests.fleet import fleet_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    home = tmp_path_factory.mktemp("contract")
    env = fleet_env(home=home / "home")
    with api_server(env, home, "--no-run") as running:
        yield running


@pytest.fixture(scope="module")
def key(server: ApiServer) -> str:
    return server.key("alpha")


def _ids(client: httpx.Client) -> list[str]:
    return [
        r["request_id"] for r in client.get("/v1/requests", params={"limit": 200}).json()["results"]
    ]


def test_every_route_but_health_needs_a_valid_key(server: ApiServer, key: str) -> None:
    anonymous = server.client()
    assert anonymous.get("/healthz").status_code == 200
    answer = anonymous.get("/v1/requests")
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.headers["content-type"] == "application/problem+json"
    assert server.client("sk_not-a-key").get("/v1/requests").status_code == 401
    assert server.client(key, scheme="Key").get("/v1/requests").status_code == 200
    schema = anonymous.get("/openapi.json").json()
    assert "/v1/requests/{request_id}/items" in schema["paths"]
    assert "budget_exhausted" in json.dumps(schema["components"]["schemas"]["ItemStatus"])


def test_bad_input_names_every_problem_and_writes_nothing(server: ApiServer, key: str) -> None:
    client = server.client(key)
    before = _ids(client)
    body = manifest([{"sku": "A1"}, {"sku": "A1"}, {"no_sku": 1}], priority=42)
    body["template"]["aspect_ratio"] = "7:3"
    answer = client.post("/v1/requests", json=body)
    assert answer.status_code == 422, answer.text
    problems = answer.json()["problems"]
    fields = {p["field"] for p in problems}
    assert {"priority", "template.aspect_ratio"} <= fields
    assert all(p["file"] == "body" for p in problems)
    assert any(p["row"] == 2 and (p["field"] or "").startswith("rows[2]") for p in problems), (
        problems
    )
    assert not any("stencil-api-" in json.dumps(p) for p in problems)  # no server paths
    assert (
        client.post(
            "/v1/requests", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/v1/requests", content=b"x", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert _ids(client) == before


def test_references_cannot_read_the_servers_files_or_buckets(server: ApiServer, key: str) -> None:
    client = server.client(key)
    body = manifest([{"sku": "A1"}])
    body["template"]["images"] = ["/etc/hostname", "../../stencil.db", "s3://bucket/secret.png"]
    answer = client.post("/v1/requests", json=body)
    assert answer.status_code == 422
    messages = " ".join(p["message"] for p in answer.json()["problems"])
    assert "outside the manifest's folder" in messages and "not read for HTTP" in messages


def test_dry_run_answers_the_expansion_and_writes_nothing(server: ApiServer, key: str) -> None:
    client = server.client(key)
    before = _ids(client)
    answer = client.post(
        "/v1/requests", params={"dry_run": "true"}, json=manifest([{"sku": "D1"}, {"sku": "D2"}])
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["dry_run"] is True and body["items"] == 2
    assert body["samples"][0]["prompt"] == "a photo of D1"
    assert _ids(client) == before


def test_submit_answers_202_with_its_urls(server: ApiServer, key: str) -> None:
    client = server.client(key)
    answer = client.post("/v1/requests", json=manifest([{"sku": "S1"}, {"sku": "S2"}]))
    assert answer.status_code == 202, answer.text
    body = answer.json()
    request_id = body["request_id"]
    assert body["items"] == 2 and body["status"] == "running"
    assert body["status_url"] == f"{server.base}/v1/requests/{request_id}"
    view = client.get(body["status_url"]).json()
    assert view["counts"] == {"queued": 2} and view["queue_position"] == 0
    page = client.get(body["response_url"], params={"limit": 1}).json()
    assert [i["key"] for i in page["results"]] == ["S1"] and page["next"]
    second = client.get(page["next"]).json()
    assert [i["key"] for i in second["results"]] == ["S2"] and second["next"] is None
    item_id = page["results"][0]["request_id"]
    assert client.get(f"/v1/items/{item_id}").json()["status"] == "queued"
    assert client.get(body["response_url"], params={"status": "succeeded"}).json()["results"] == []
    assert client.get(body["response_url"], params={"status": "nope"}).status_code == 422
    assert client.get(body["response_url"], params={"cursor": "!!"}).status_code == 422


def test_same_key_same_body_replays_the_first_answer(server: ApiServer, key: str) -> None:
    client = server.client(key)
    before = set(_ids(client))
    body = manifest([{"sku": "I1"}], name="idem")
    headers = {"Idempotency-Key": "retry-1"}
    first = client.post("/v1/requests", json=body, headers=headers)
    again = client.post("/v1/requests", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert set(_ids(client)) - before == {first.json()["request_id"]}
    other = client.post("/v1/requests", json=manifest([{"sku": "I2"}]), headers=headers)
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    # a bad request keeps no key: fixed, it goes through with the same key
    bad = manifest([{"sku": "I3"}], priority=99)
    assert (
        client.post("/v1/requests", json=bad, headers={"Idempotency-Key": "fix-me"}).status_code
        == 422
    )
    fixed = client.post(
        "/v1/requests", json=manifest([{"sku": "I3"}]), headers={"Idempotency-Key": "fix-me"}
    )
    assert fixed.status_code == 202


def test_concurrent_duplicates_create_one_request(server: ApiServer, key: str) -> None:
    client = server.client(key)
    before = set(_ids(client))
    rows = [{"sku": f"C{n}"} for n in range(200)]
    body = manifest(rows, name="concurrent")

    def post(_: int) -> httpx.Response:
        with server.client(key) as own:
            return own.post("/v1/requests", json=body, headers={"Idempotency-Key": "burst-7"})

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(post, range(6)))
    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {202, 409}, [a.text for a in answers]
    created = {a.json()["request_id"] for a in answers if a.status_code == 202}
    assert len(created) == 1
    assert set(_ids(client)) - before == created
    assert all(a.headers.get("Retry-After") for a in answers if a.status_code == 409)


def test_tenants_see_only_their_own_requests(server: ApiServer, key: str) -> None:
    mine = server.client(key)
    theirs_key = server.key("beta")
    theirs = server.client(theirs_key)
    submitted = theirs.post("/v1/requests", json=manifest([{"sku": "T1"}])).json()
    request_id = submitted["request_id"]
    item_id = theirs.get(submitted["response_url"]).json()["results"][0]["request_id"]
    assert request_id not in _ids(mine) and _ids(theirs) == [request_id]
    tries = [
        ("GET", f"/v1/requests/{request_id}"),
        ("GET", f"/v1/requests/{request_id}/items"),
        ("GET", f"/v1/items/{item_id}"),
        ("GET", f"/v1/requests/{request_id}/webhooks"),
        ("POST", f"/v1/requests/{request_id}/cancel"),
        ("POST", f"/v1/requests/{item_id}/cancel"),
        ("POST", f"/v1/requests/{request_id}/pause"),
        ("POST", f"/v1/requests/{request_id}/resume"),
        ("POST", f"/v1/requests/{request_id}/retry"),
        ("POST", f"/v1/requests/{item_id}/retry"),
        ("POST", f"/v1/requests/{request_id}/webhooks/msg_x/redeliver"),
    ]
    for method, path in tries:
        answer = mine.request(method, path)
        missing = mine.request(method, path.replace(request_id, "b_0000000000000000000000000"))
        assert answer.status_code == 404, (method, path, answer.text)
        assert missing.status_code == 404
    assert theirs.get(f"/v1/requests/{request_id}").json()["status"] == "running"
    keys = cli_json("keys", "list", env=server.env)
    beta = next(k for k in keys if k["name"] == "beta")
    cli_json("keys", "revoke", beta["key_id"], env=server.env)
    assert theirs.get(f"/v1/requests/{request_id}").status_code == 401


def test_submits_are_rate_limited_per_key(server: ApiServer) -> None:
    limited = server.client(server.key("gamma", "--submits-per-minute", "2"))
    answers = [limited.post("/v1/requests", json=manifest([{"sku": f"R{n}"}])) for n in range(5)]
    codes = [a.status_code for a in answers]
    # 2 a minute: 5 submits (even across a minute's end) meet the limit at least once
    assert codes.count(202) <= 4 and 429 in codes, codes
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers if a.status_code == 429)
    assert limited.get("/v1/requests").status_code == 200  # polls are not limited


def test_control_routes_act_like_the_cli(server: ApiServer, key: str) -> None:
    client = server.client(key)
    request_id = client.post("/v1/requests", json=manifest([{"sku": "K1"}, {"sku": "K2"}])).json()[
        "request_id"
    ]
    assert client.post(f"/v1/requests/{request_id}/pause").json()["status"] == "paused"
    assert client.post(f"/v1/requests/{request_id}/resume").json()["status"] == "running"
    cancel = client.post(f"/v1/requests/{request_id}/cancel", headers={"Idempotency-Key": "c-1"})
    assert cancel.json() == {
        "request_id": request_id,
        "action": "cancel",
        "changed": 2,
        "status": "cancelled",
    }
    assert (
        client.post(f"/v1/requests/{request_id}/cancel", headers={"Idempotency-Key": "c-1"}).content
        == cancel.content
    )
    assert client.get(f"/v1/requests/{request_id}").json()["counts"] == {"cancelled": 2}
    assert (
        client.post(f"/v1/requests/{request_id}/retry", json={"failed": True}).json()["changed"]
        == 0
    )
    assert client.post(f"/v1/requests/{request_id}/retry", json={"bogus": True}).status_code == 422
    retried = client.post(f"/v1/requests/{request_id}/retry").json()
    assert retried["changed"] == 2 and retried["status"] == "running"


def test_file_links_refuse_bad_signatures_and_escapes(server: ApiServer) -> None:
    anonymous = server.client()
    assert anonymous.get("/v1/files/a.png", params={"expires": 1, "sig": "x"}).status_code == 403
    assert anonymous.get(
        "/v1/files/../../stencil.db", params={"expires": 9999999999, "sig": "x"}
    ).status_code in (403, 404)


def test_a_tenants_spending_cap_bounds_each_new_requests_budget(server: ApiServer) -> None:
    capped = server.client(server.key("capped", "--spend-cap", "0.10"))
    paid = manifest([{"sku": "P1"}, {"sku": "P2"}], provider="vertex")
    first = capped.post("/v1/requests", json=paid)
    assert first.status_code == 202, first.text
    assert 0 < first.json()["estimated_cost_usd"] <= first.json()["budget_usd"] == 0.10
    second = capped.post("/v1/requests", json=manifest([{"sku": "P3"}], provider="vertex"))
    assert second.status_code == 402 and "spending cap" in second.json()["detail"]
    capped.post(f"/v1/requests/{first.json()['request_id']}/cancel")
    free = capped.post("/v1/requests", json=manifest([{"sku": "P4"}]))  # preview costs nothing
    assert free.status_code == 202
