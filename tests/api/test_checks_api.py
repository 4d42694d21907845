"""Automatic checks over HTTP and in `stencil results`: `stencil serve` on the embedded default
(preview images draw the prompt, so OCR reads it) shows each item's checks, retries those that
failed (`{"qa_failed": true}`, like `stencil retry --qa-failed`), counts them in the
request.completed webhook, and `stencil results` has qa and qa_note columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api._server import ApiServer, Receiver, manifest, wait_ended, wait_for
from tests.cli import run_cli

pytestmark = pytest.mark.slow

ROWS = [
    {"sku": "Q1", "name": "Ana Lima", "shown": "Ana Lima"},
    {"sku": "Q2", "name": "Bo Chen", "shown": "Bruno Silva"},  # the image shows another name
]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def items_of(client: httpx.Client, request_id: str) -> dict[str, dict[str, Any]]:
    page = client.get(f"/v1/requests/{request_id}/items").json()
    return {i["key"]: i for i in page["results"]}


def test_checks_in_item_answers_results_webhooks_and_retry(
    running_server: ApiServer, receiver: Receiver
) -> None:
    client = running_server.client(running_server.key("checks"))
    body = manifest(ROWS, webhook_url=receiver.url)
    body["template"] = {
        "prompt": "Badge for {{ shown }}",
        "aspect_ratio": "1:1",
        "checks": {"size": True, "expect_text": "{{ name }}", "max_qa_retries": 1},
    }
    request_id = client.post("/v1/requests", json=body).json()["request_id"]
    wait_ended(client, request_id)
    items = items_of(client, request_id)
    assert items["Q1"]["checks"] == {"state": "passed", "note": None}
    assert items["Q2"]["checks"]["state"] == "failed"
    assert "expected text 'Bo Chen' not found; read '" in items["Q2"]["checks"]["note"]
    assert "Bruno Silva" in items["Q2"]["checks"]["note"]
    single = client.get(f"/v1/items/{items['Q2']['request_id']}").json()
    assert single["checks"] == items["Q2"]["checks"]

    event = wait_for(lambda: receiver.events(), 30, "request.completed")[0]
    assert event["type"] == "request.completed"
    assert event["data"]["checks"] == {"pending": 0, "passed": 1, "failed": 1}

    results = run_cli("results", request_id, env=running_server.env)
    assert results.returncode == 0, results.stderr
    rows = {r["key"]: r for r in csv.DictReader(io.StringIO(results.stdout))}
    assert (rows["Q1"]["qa"], rows["Q1"]["qa_note"]) == ("passed", "")
    assert rows["Q2"]["qa"] == "failed" and "expected text 'Bo Chen'" in rows["Q2"]["qa_note"]

    bad = client.post(f"/v1/requests/{request_id}/retry", json={"qa_failled": True})
    assert bad.status_code == 422
    retried = client.post(f"/v1/requests/{request_id}/retry", json={"qa_failed": True})
    assert retried.status_code == 200 and retried.json()["changed"] == 1
    wait_ended(client, request_id)
    after = items_of(client, request_id)
    assert after["Q1"]["storage_key"] == items["Q1"]["storage_key"]  # a passed one stays
    assert after["Q2"]["storage_key"] != items["Q2"]["storage_key"]  # regenerated, first kept
    assert after["Q2"]["checks"]["state"] == "failed"  # the same prompt draws the same name
    again = client.post(f"/v1/requests/{request_id}/retry", json={"qa_failed": True})
    assert again.json()["changed"] == 0  # max_qa_retries: 1
