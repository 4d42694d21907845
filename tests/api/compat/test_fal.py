"""The unmodified fal_client (from PyPI) against Stencil over TLS on the fleet: queue updates,
submit/status/result, an edit with two reference images, cancel, and a blocked request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from stencil.emulator import EmulatorHandle
from tests.api._compat import CompatFleet, run_fal
from tests.api._server import Receiver, wait_for

pytestmark = pytest.mark.slow


def test_subscribe_gets_queue_updates_and_the_stored_image(compat: CompatFleet) -> None:
    seen = run_fal(compat, "subscribe")
    assert seen["updates"][-1] == "Completed"
    assert set(seen["updates"]) <= {"Queued", "InProgress", "Completed"}
    (image,) = seen["result"]["images"]
    assert image["content_type"].startswith("image/")
    url = image["url"]
    assert url.startswith(compat.s3_url) and "Signature" in url
    (request,) = [
        r
        for r in compat.client().get("/v1/requests").json()["results"]
        if r["name"] == "fal: fal-ai/nano-banana" and r["cost_usd"] > 0
    ][:1]
    (item,) = compat.items(request["request_id"])
    assert httpx.get(url).content == compat.stored(item["storage_key"])


def test_submit_status_result_is_one_stencil_request(compat: CompatFleet) -> None:
    seen = run_fal(compat, "submit_status_result")
    request_id = seen["request_id"]
    assert seen["statuses"][-1] == "Completed"
    (item,) = compat.items(request_id)
    (image,) = seen["result"]["images"]
    assert httpx.get(image["url"]).content == compat.stored(item["storage_key"])
    polled = compat.poll(request_id)  # the CLI sees the same request, with its cost
    assert polled["request_id"] == request_id and polled["counts"] == {"succeeded": 1}
    assert polled["cost_usd"] > 0 and polled["cost_usd"] == item["cost_usd"]
    assert polled["model"] == "gemini-2.5-flash-image" and polled["provider"] == "vertex"


def test_edit_with_two_reference_images(compat: CompatFleet) -> None:
    seen = run_fal(compat, "edit")
    (image,) = seen["result"]["images"]
    (item,) = compat.items(seen["request_id"])
    assert httpx.get(image["url"]).content == compat.stored(item["storage_key"])
    view = compat.client().get(f"/v1/requests/{seen['request_id']}").json()
    assert view["name"] == "fal: fal-ai/nano-banana/edit"
    assert compat.emu.stats()["requests"] >= 1


def test_cancel_reaches_the_client(compat: CompatFleet, emu: EmulatorHandle) -> None:
    emu.configure(latency_mean_s=2.0)  # the call is still in flight when the cancel arrives
    seen = run_fal(compat, "cancel")
    assert seen["error"] == "the request was cancelled"
    assert seen["outcome"].startswith("400")
    view = compat.client().get(f"/v1/requests/{seen['request_id']}").json()
    assert view["status"] == "cancelled"


def test_blocked_request_error_reaches_the_client(compat: CompatFleet) -> None:
    seen = run_fal(compat, "blocked")
    assert seen["status_code"] == 422
    assert "blocked" in seen["message"]


def test_another_tenant_sees_nothing(compat: CompatFleet) -> None:
    mine = compat.client(scheme="Key").post(
        "/fal-ai/nano-banana", json={"prompt": "a private mug (tenancy)"}
    )
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["status"] == "IN_QUEUE" and body["status_url"].startswith(compat.base)
    other = compat.client(compat.new_tenant_key("other-fal"), scheme="Key")
    request_id = body["request_id"]
    assert other.get(f"/fal-ai/nano-banana/requests/{request_id}/status").status_code == 404
    assert other.get(f"/fal-ai/nano-banana/requests/{request_id}").status_code == 404
    gone = other.put(f"/fal-ai/nano-banana/requests/{request_id}/cancel")
    assert gone.status_code == 404 and gone.json() == {"status": "NOT_FOUND"}
    assert compat.client().post("/fal-ai/unknown-model", json={"prompt": "x"}).status_code == 404


def test_num_images_webhook_and_idempotency_over_the_queue(compat: CompatFleet) -> None:
    receiver = Receiver().start()
    try:
        client = compat.client(scheme="Key")
        body = {"prompt": "two saucers (fal n)", "num_images": 2, "seed": 7, "sync_mode": False}
        headers = {"Idempotency-Key": "fal-n-1"}
        params = {"fal_webhook": receiver.url}
        first = client.post("/fal-ai/nano-banana", json=body, headers=headers, params=params)
        again = client.post("/fal-ai/nano-banana", json=body, headers=headers, params=params)
        assert first.status_code == again.status_code == 200, first.text
        request_id = first.json()["request_id"]
        assert again.json()["request_id"] == request_id  # a retried submit is one request

        status_url = first.json()["status_url"]

        def completed() -> dict[str, Any] | None:
            answer = client.get(status_url, params={"logs": "1"})
            if answer.json()["status"] != "COMPLETED":
                assert answer.status_code == 202
                return None
            assert answer.status_code == 200
            return dict(answer.json())

        done = wait_for(completed, 90, "COMPLETED")
        assert "error" not in done and done["logs"] and done["metrics"]["cost_usd"] > 0
        images = client.get(first.json()["response_url"]).json()["images"]
        assert len(images) == 2
        stored = sorted(compat.stored(i["storage_key"]) for i in compat.items(request_id))
        assert sorted(httpx.get(i["url"]).content for i in images) == stored

        secret = compat.client().get("/v1/webhooks/secret").json()["secret"]
        wait_for(lambda: receiver.received, 60, "the webhook")
        event = Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)
        assert event["data"]["request_id"] == request_id
        assert event["data"]["counts"] == {"succeeded": 2}
    finally:
        receiver.stop()
