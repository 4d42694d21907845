"""The unmodified replicate client (from PyPI) with Client(base_url=...) against Stencil on the
fleet: run, predictions.create + wait, cancel, list, and a webhook its own validator accepts."""

from __future__ import annotations

import httpx
import pytest
import replicate
from replicate.client import Client
from replicate.webhook import Webhooks, WebhookSigningSecret

from stencil.emulator import EmulatorHandle
from tests.api._compat import CompatFleet, data_uri
from tests.api._server import Receiver, wait_for

pytestmark = pytest.mark.slow
MODEL = "google/nano-banana"


def _client(compat: CompatFleet, key: str | None = None) -> Client:
    transport = httpx.HTTPTransport(verify=compat.tls())  # trusts the test CA
    return Client(api_token=key or compat.key, base_url=compat.base, transport=transport)


def test_run_returns_the_stored_image(compat: CompatFleet) -> None:
    output = _client(compat).run(MODEL, input={"prompt": "a green teapot (replicate run)"})
    assert isinstance(output, str) and output.startswith(compat.s3_url)
    listed = compat.client().get("/v1/requests").json()["results"]
    request_id = next(r["request_id"] for r in listed if r["name"] == f"replicate: {MODEL}")
    (item,) = compat.items(request_id)
    assert httpx.get(output).content == compat.stored(item["storage_key"])
    polled = compat.poll(request_id)
    assert polled["counts"] == {"succeeded": 1} and polled["cost_usd"] == item["cost_usd"] > 0


def test_create_and_wait_with_a_verified_webhook(compat: CompatFleet) -> None:
    receiver = Receiver().start()
    try:
        client = _client(compat)
        prediction = client.predictions.create(
            model=MODEL,
            input={
                "prompt": "this mug, lit like that (replicate edit)",
                "image_input": [data_uri((30, 30, 200)), data_uri((250, 250, 220))],
                "output_format": "jpg",
            },
            webhook=receiver.url,
            webhook_events_filter=["completed"],
        )
        assert prediction.status in ("starting", "processing", "succeeded")
        prediction.wait()
        assert prediction.status == "succeeded" and prediction.error is None
        assert prediction.model == MODEL
        (item,) = compat.items(prediction.id)
        assert httpx.get(str(prediction.output)).content == compat.stored(item["storage_key"])
        again = client.predictions.get(prediction.id)
        assert again.status == "succeeded" and again.id == prediction.id

        secret = compat.client().get("/v1/webhooks/secret").json()["secret"]
        wait_for(lambda: receiver.received, 60, "the webhook")
        got = receiver.received[0]
        Webhooks.validate(
            headers=got.headers,
            body=got.body.decode(),
            secret=WebhookSigningSecret(key=secret),
            tolerance=300,
        )  # raises unless the signature is replicate's format with our secret
        assert receiver.events()[0]["data"]["request_id"] == prediction.id
        with pytest.raises(Exception, match=r"(?i)signature"):
            Webhooks.validate(
                headers=got.headers,
                body=got.body.decode(),
                secret=WebhookSigningSecret(key="whsec_" + "A" * 43 + "="),
                tolerance=300,
            )
    finally:
        receiver.stop()


def test_create_by_version_and_cancel(compat: CompatFleet, emu: EmulatorHandle) -> None:
    emu.configure(latency_mean_s=2.0)  # still in flight when the cancel arrives
    client = _client(compat)
    prediction = client.predictions.create(
        version=f"{MODEL}:any", input={"prompt": "a slow jug (replicate cancel)"}
    )
    assert prediction.status == "starting"
    cancelled = client.predictions.cancel(prediction.id)
    assert cancelled.status == "canceled"
    prediction.reload()
    assert str(prediction.status) == "canceled"
    view = compat.client().get(f"/v1/requests/{prediction.id}").json()
    assert view["status"] == "cancelled"


def test_list_pages_with_the_client_and_other_tenants_see_nothing(compat: CompatFleet) -> None:
    client = _client(compat)
    created = client.predictions.create(model=MODEL, input={"prompt": "a list mug"})
    first = compat.client().get("/v1/predictions", params={"limit": 1}).json()
    assert first["results"][0]["id"] == created.id and first["next"]
    page = client.predictions.list(first["next"])  # the client follows the next URL as it is
    assert page.results and created.id not in [p.id for p in page.results]
    assert created.id in [p.id for p in client.predictions.list().results]

    other = _client(compat, compat.new_tenant_key("other-replicate"))
    assert other.predictions.list().results == []
    with pytest.raises(replicate.exceptions.ReplicateError) as missing:
        other.predictions.get(created.id)
    assert missing.value.status == 404
    with pytest.raises(replicate.exceptions.ReplicateError) as unknown:
        client.predictions.create(model="someone/unknown", input={"prompt": "x"})
    assert unknown.value.status == 404
