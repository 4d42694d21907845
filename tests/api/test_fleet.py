"""The HTTP API in the fleet shape: Postgres, Redis, moto S3 over HTTP, the Vertex emulator driven
by the real SDK, and `stencil serve --no-run`, a scheduler and a worker each in its own process."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest
from standardwebhooks import Webhook

from stencil.emulator import EmulatorHandle
from tests.api._server import Receiver, free_port, png, wait_ended, wait_for, wait_healthy
from tests.cli import cli_json
from tests.fleet import Fleet, migrated_fleet

pytestmark = pytest.mark.slow
MANIFEST = """\
version: 1
name: fleet-mugs
key: "{{ sku }}"
template:
  prompt: "A ceramic mug in the colour of the first image, lit like the second"
  images: ["{{ sku }}.png", "light.png"]
  aspect_ratio: "1:1"
rows: rows.csv
"""


@pytest.fixture
def fleet(
    tmp_path: Path,
    pg_url: str,
    redis_url: str,
    s3_bucket: tuple[str, str],
    s3_env: dict[str, str],
    emu: EmulatorHandle,
) -> Iterator[Fleet]:
    with migrated_fleet(
        tmp_path,
        pg_url=pg_url,
        redis_url=redis_url,
        s3=s3_bucket,
        s3_env=s3_env,
        emulator_url=emu.url,
        STENCIL_WEBHOOK_ALLOW_LOOPBACK="true",
        STENCIL_WEBHOOK_RETRY_S="[0, 0.5, 0.5, 0.5, 0.5]",
    ) as fleet:
        yield fleet


def _api(fleet: Fleet) -> tuple[str, httpx.Client]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = fleet.start("api", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-run")
    wait_healthy(base, process, fleet.log_dir / "api.log")
    key = cli_json("keys", "create", "fleet", env=fleet.env)["key"]
    return base, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_multipart_submit_runs_on_the_fleet_with_s3_urls_and_a_signed_webhook(
    fleet: Fleet, s3_bucket: tuple[str, str], emu: EmulatorHandle
) -> None:
    receiver = Receiver().start()
    try:
        _, client = _api(fleet)
        fleet.start_scheduler()
        fleet.start_worker(concurrency=4)
        files = [
            ("manifest", ("mugs.yaml", MANIFEST.encode(), "application/yaml")),
            ("rows", ("rows.csv", b"sku\nred\nblue\n", "text/csv")),
            ("image", ("red.png", png((200, 30, 30)), "image/png")),
            ("image", ("blue.png", png((30, 30, 200)), "image/png")),
            ("image", ("light.png", png((250, 250, 220)), "image/png")),
        ]
        answer = client.post("/v1/requests", files=files, data={"webhook_url": receiver.url})
        assert answer.status_code == 202, answer.text
        request_id = answer.json()["request_id"]
        view = wait_ended(client, request_id)
        assert view["counts"] == {"succeeded": 2}, fleet.logs()
        assert view["preview"] is False and view["cost_usd"] > 0

        endpoint, bucket = s3_bucket
        s3 = boto3.client("s3", endpoint_url=endpoint)
        for item in client.get(f"/v1/requests/{request_id}/items").json()["results"]:
            url = item["images"][0]["url"]
            assert url.startswith(endpoint) and "Signature" in url
            stored = s3.get_object(Bucket=bucket, Key=f"out/{item['storage_key']}")["Body"].read()
            assert httpx.get(url).content == stored
        assert emu.stats()["requests"] == 2

        secret = client.get("/v1/webhooks/secret").json()["secret"]
        wait_for(lambda: receiver.received, 60, "the webhook")
        (event,) = [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]
        assert event["type"] == "request.completed"
        assert event["data"]["counts"] == {"succeeded": 2}
        assert event["data"]["cost_usd"] == view["cost_usd"]

        # a request the provider refuses outright stops: request.failed says why
        emu.configure(retired_models=["gemini-2.5-flash-image"])
        stopped = client.post(
            "/v1/requests",
            params={"force": "true"},
            files=files,
            data={"webhook_url": receiver.url},
        )
        stopped_id = stopped.json()["request_id"]
        wait_for(lambda: len(receiver.received) == 2, 60, "the request.failed event")
        failed = Webhook(secret).verify(receiver.received[1].body, receiver.received[1].headers)
        assert failed["type"] == "request.failed"
        assert failed["data"]["request_id"] == stopped_id
        assert failed["data"]["status"] == "stopped"
        assert failed["data"]["reason"].startswith("stopped: the model is unknown or retired")
    finally:
        receiver.stop()


def test_a_delivery_survives_a_scheduler_restart(fleet: Fleet) -> None:
    receiver = Receiver().start()
    port = receiver.port
    receiver.stop()  # nobody listens yet: attempts fail
    _, client = _api(fleet)
    fleet.start_scheduler()
    fleet.start_worker(concurrency=4)
    body = {
        "version": 1, "name": "restart", "key": "{{ sku }}",
        "template": {"prompt": "a mug {{ sku }}"}, "rows": [{"sku": "r1"}],
        "webhook_url": f"http://127.0.0.1:{port}/hooks",
    }  # fmt: skip
    request_id = client.post("/v1/requests", json=body).json()["request_id"]
    wait_ended(client, request_id)

    def failed_once() -> bool:
        found = client.get(f"/v1/requests/{request_id}/webhooks").json()["deliveries"]
        return bool(found) and found[0]["attempts"] >= 1

    wait_for(failed_once, 60, "a failed attempt")
    fleet.kill("scheduler", signal.SIGKILL)
    receiver = Receiver().start(port)
    try:
        fleet.start_scheduler()
        wait_for(lambda: receiver.received, 60, "the delivery after the restart")
        (delivery,) = client.get(f"/v1/requests/{request_id}/webhooks").json()["deliveries"]
        wait_for(
            lambda: (
                client.get(f"/v1/requests/{request_id}/webhooks").json()["deliveries"][0]["state"]
                == "delivered"
            ),
            30,
            "delivered",
        )
        assert {r.headers["webhook-id"] for r in receiver.received} == {delivery["id"]}
        assert receiver.events()[0]["data"]["request_id"] == request_id
    finally:
        receiver.stop()


def test_concurrent_duplicate_submits_on_postgres_create_one_request(fleet: Fleet) -> None:
    base, client = _api(fleet)
    key = client.headers["Authorization"]
    body = {
        "version": 1, "name": "dupes", "key": "{{ sku }}", "template": {"prompt": "{{ sku }}"},
        "rows": [{"sku": f"d{n}"} for n in range(300)],
    }  # fmt: skip

    def post(_: int) -> httpx.Response:
        headers = {"Authorization": key, "Idempotency-Key": "pg-burst"}
        return httpx.post(f"{base}/v1/requests", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(post, range(6)))
    assert {a.status_code for a in answers} <= {202, 409}, [a.text for a in answers]
    created = {a.json()["request_id"] for a in answers if a.status_code == 202}
    listed = client.get("/v1/requests").json()["results"]
    assert len(created) == 1 and [r["request_id"] for r in listed] == list(created)
    replay = post(0)
    assert replay.status_code == 202 and replay.json()["request_id"] in created
