"""302.AI's async routes on the fleet, checked shape by shape with httpx (no Python client of
them exists): submit, pending, done without `request_id`, failed with `error.message`, the task
fetch, and an edit whose reference images are https URLs fetched by the guarded fetcher."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api._compat import CompatFleet, tls_files
from tests.api._server import png, wait_for

pytestmark = pytest.mark.slow
T2I = "/302/submit/gemini-2.5-flash-image-async"
EDIT = "/302/submit/gemini-2.5-flash-image-edit-async"


def _done(client: httpx.Client, request_id: str) -> httpx.Response:
    """Polls the text-to-image path (as 302's clients do, for edits too) until it is not
    pending; pending answers are exactly {request_id, status}."""

    def check() -> httpx.Response | None:
        answer = client.get(T2I, params={"request_id": request_id})
        body: dict[str, Any] = answer.json()
        if answer.status_code == 200 and "request_id" in body:
            assert set(body) == {"request_id", "status"}
            assert body["status"] in ("IN_QUEUE", "IN_PROGRESS")
            return None
        return answer

    return wait_for(check, 90, f"302 request {request_id}")  # type: ignore[no-any-return]


def test_text_to_image_shapes_and_the_stored_bytes(compat: CompatFleet) -> None:
    client = compat.client()
    submitted = client.post(T2I, json={"prompt": "a yellow bowl (302)", "aspect_ratio": "16:9"})
    assert submitted.status_code == 200, submitted.text
    body = submitted.json()
    assert set(body) == {"request_id", "status"} and body["status"] == "IN_QUEUE"
    request_id = body["request_id"]

    done = _done(client, request_id)
    assert done.status_code == 200
    assert list(done.json()) == ["images"]  # no request_id: clients read it as pending
    (image,) = done.json()["images"]
    assert set(image) == {"url", "content_type"}
    (item,) = compat.items(request_id)
    assert httpx.get(image["url"]).content == compat.stored(item["storage_key"])

    task = client.get(f"/302/task/{request_id}/fetch").json()
    assert set(task) == {
        "completed_at", "created_at", "error", "id", "model", "output", "started_at", "status"
    }  # fmt: skip
    assert all(isinstance(v, str) for v in task.values())
    assert task["status"] == "succeeded" and task["id"] == request_id
    assert task["model"] == "gemini-2.5-flash-image-async"

    polled = compat.poll(request_id)
    assert polled["counts"] == {"succeeded": 1} and polled["cost_usd"] == item["cost_usd"] > 0
    assert item["prompt"] == "a yellow bowl (302)"


def test_edit_fetches_https_references(compat: CompatFleet) -> None:
    files = {"/mug.png": png((10, 200, 10)), "/light.png": png((240, 240, 200))}
    with tls_files(compat.pem, files) as base:
        urls = [f"{base}/mug.png", f"{base}/light.png"]
        client = compat.client()
        submitted = client.post(EDIT, json={"prompt": "this mug, that light", "image_urls": urls})
        assert submitted.status_code == 200, submitted.text
    request_id = submitted.json()["request_id"]
    done = _done(client, request_id)
    assert done.status_code == 200, done.text
    (item,) = compat.items(request_id)
    assert httpx.get(done.json()["images"][0]["url"]).content == compat.stored(item["storage_key"])


def test_blocked_and_bad_input_answer_error_message(compat: CompatFleet) -> None:
    client = compat.client()
    request_id = client.post(T2I, json={"prompt": "forbidden [[SAFETY]] (302)"}).json()[
        "request_id"
    ]
    failed = _done(client, request_id)
    assert failed.status_code == 422
    assert "blocked" in failed.json()["error"]["message"]
    assert client.get(f"/302/task/{request_id}/fetch").json()["status"] == "failed"

    missing = client.post(T2I, json={"aspect_ratio": "1:1"})
    assert missing.status_code == 422 and "prompt" in missing.json()["error"]["message"]
    refused = client.post(EDIT, json={"prompt": "x", "image_urls": ["http://example.com/a.png"]})
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith("image_urls[0]")

    other = compat.client(compat.new_tenant_key("other-302"))
    hidden = other.get(T2I, params={"request_id": request_id})
    assert hidden.status_code == 404 and hidden.json()["error"]["message"]
