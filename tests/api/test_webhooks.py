"""Webhooks end to end on the embedded default: `stencil serve` runs the requests and its
scheduler sends the deliveries to a receiver on loopback, which verifies every signature with the
`standardwebhooks` package."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.api._server import ApiServer, Receiver, manifest, wait_ended, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(running_server: ApiServer) -> httpx.Client:
    return running_server.client(running_server.key("hooks"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def _deliveries(client: httpx.Client, request_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/v1/requests/{request_id}/webhooks").json()["deliveries"])


def _settled(client: httpx.Client, request_id: str, state: str) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        found = _deliveries(client, request_id)
        return found if found and all(d["state"] == state for d in found) else None

    return list(wait_for(check, 60, f"deliveries {state}"))


def test_failing_receiver_gets_the_event_once_per_webhook_id(
    client: httpx.Client, receiver: Receiver
) -> None:
    receiver.script = [500, 503]  # fails twice, then answers 200
    secret = client.get("/v1/webhooks/secret").json()["secret"]
    body = manifest([{"sku": "W1"}, {"sku": "W2"}], webhook_url=receiver.url)
    request_id = client.post("/v1/requests", json=body).json()["request_id"]
    view = wait_ended(client, request_id)
    (delivery,) = _settled(client, request_id, "delivered")

    assert len(receiver.received) == 3
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert ids == {delivery["id"]}  # the same id on every attempt: processed once
    verifier = Webhook(secret)
    events = [verifier.verify(r.body, r.headers) for r in receiver.received]
    assert events[0] == events[-1]
    event = events[-1]
    assert event["type"] == "request.completed"
    assert event["data"]["request_id"] == request_id
    assert event["data"]["counts"] == view["counts"] == {"succeeded": 2}
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 503, 200]
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(
            receiver.received[0].body, receiver.received[0].headers
        )

    again = client.post(f"/v1/requests/{request_id}/webhooks/{delivery['id']}/redeliver")
    assert again.status_code == 202
    wait_for(lambda: len(receiver.received) == 4, 30, "redelivery")
    assert receiver.received[-1].headers["webhook-id"] == delivery["id"]


def test_cancelled_request_sends_request_failed(client: httpx.Client, receiver: Receiver) -> None:
    rows = [{"sku": f"X{n}"} for n in range(60)]
    body = manifest(rows, webhook_url=receiver.url, webhook_events=["request.failed"])
    request_id = client.post("/v1/requests", json=body).json()["request_id"]
    assert client.post(f"/v1/requests/{request_id}/cancel").json()["status"] == "cancelled"
    _settled(client, request_id, "delivered")
    (event,) = receiver.events()
    assert event["type"] == "request.failed" and event["data"]["reason"] == "cancelled"
    assert event["data"]["status"] == "cancelled"


def test_event_filter_and_gone_endpoint(client: httpx.Client, receiver: Receiver) -> None:
    only_failed = manifest(
        [{"sku": "F1"}], webhook_url=receiver.url, webhook_events=["request.failed"]
    )
    quiet = client.post("/v1/requests", json=only_failed).json()["request_id"]
    wait_ended(client, quiet)
    receiver.script = [410]
    gone = client.post(
        "/v1/requests", json=manifest([{"sku": "G1"}], webhook_url=receiver.url)
    ).json()
    (delivery,) = _settled(client, gone["request_id"], "disabled")
    assert delivery["attempts"] == 1 and len(receiver.received) == 1  # 410: never tried again
    assert _deliveries(client, quiet) == []


def test_webhook_urls_are_checked_like_reference_urls(client: httpx.Client) -> None:
    for url in ("http://example.com/hook", "https://10.1.2.3/hook", "ftp://127.0.0.1/x"):
        answer = client.post("/v1/requests", json=manifest([{"sku": "U1"}], webhook_url=url))
        assert answer.status_code == 422, url
        assert answer.json()["problems"][0]["field"] == "webhook_url"
    bad_events = manifest([{"sku": "U2"}], webhook_url="http://127.0.0.1:9/x", webhook_events=["x"])
    assert client.post("/v1/requests", json=bad_events).status_code == 422
