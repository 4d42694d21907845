"""Images on local storage behind signed, expiring links, and the review gallery over HTTP, on
the embedded default with `stencil serve` running the requests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api._server import ApiServer, manifest, wait_ended

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(running_server: ApiServer) -> httpx.Client:
    return running_server.client(running_server.key("gallery"))


def _finished(client: httpx.Client, skus: list[str]) -> str:
    answer = client.post("/v1/requests", json=manifest([{"sku": s} for s in skus]))
    assert answer.status_code == 202, answer.text
    request_id = answer.json()["request_id"]
    assert wait_ended(client, request_id)["counts"] == {"succeeded": len(skus)}
    return str(request_id)


def test_images_are_served_through_signed_expiring_links(
    client: httpx.Client, running_server: ApiServer
) -> None:
    request_id = _finished(client, ["L1"])
    (item,) = client.get(f"/v1/requests/{request_id}/items").json()["results"]
    url = item["images"][0]["url"]
    assert url.startswith(f"{running_server.base}/v1/files/")
    stored = Path(running_server.env["STENCIL_DATA_DIR"]) / "output" / item["storage_key"]
    anonymous = httpx.Client()
    answer = anonymous.get(url)
    assert answer.status_code == 200 and answer.content == stored.read_bytes()
    assert answer.headers["content-type"] == "image/png"
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    expires, sig = int(query["expires"][0]), query["sig"][0]
    assert anonymous.get(base, params={"expires": expires + 1, "sig": sig}).status_code == 403
    assert (
        anonymous.get(base, params={"expires": expires, "sig": sig[:-2] + "AA"}).status_code == 403
    )
    other = base.replace(item["storage_key"], item["storage_key"] + ".json")
    assert anonymous.get(other, params={"expires": expires, "sig": sig}).status_code == 403
    # a link signed for a key that leaves the store is still refused
    escape = f"{running_server.base}/v1/files/..%2F..%2Fstencil.db"
    assert anonymous.get(escape, params={"expires": expires, "sig": sig}).status_code in (403, 404)


def test_gallery_has_working_thumbnails_and_takes_review_marks(client: httpx.Client) -> None:
    request_id = _finished(client, ["G1", "G2"])
    page = client.get(f"/v1/requests/{request_id}/gallery")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    data = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page.text, re.S)
    assert data is not None
    cards = json.loads(data.group(1))["items"]
    thumbs = [card["t"] for card in cards]
    assert len(thumbs) == 2 and all("/v1/files/" in t for t in thumbs)
    for url in thumbs + [card["u"] for card in cards]:  # no key needed: the links are signed
        assert httpx.get(url).status_code == 200
    assert httpx.get(thumbs[0]).headers["content-type"] == "image/jpeg"

    items = client.get(f"/v1/requests/{request_id}/items").json()["results"]
    marks = {
        "batch_id": request_id,
        "marks": [
            {"request_id": i["request_id"], "key": i["key"], "variant": i["variant"],
             "mark": "rejected" if i["key"] == "G1" else "approved", "note": "too dark"}
            for i in items
        ],
    }  # fmt: skip
    recorded = client.post(f"/v1/requests/{request_id}/reviews", json=marks)
    assert recorded.status_code == 200, recorded.text
    assert recorded.json() == {"batch_id": request_id, "recorded": 2, "approved": 1, "rejected": 1}
    retried = client.post(f"/v1/requests/{request_id}/retry", json={"rejected": True}).json()
    assert retried["changed"] == 1
    wrong = {**marks, "batch_id": "b_0000000000000000000000000"}
    assert client.post(f"/v1/requests/{request_id}/reviews", json=wrong).status_code == 422
