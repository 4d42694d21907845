"""Flows of the unmodified ``fal_client``, run as ``python -m tests.api._fal_flows <flow>`` with
FAL_QUEUE_RUN_HOST, FAL_KEY and SSL_CERT_FILE set; prints one JSON line of what it saw."""

from __future__ import annotations

import json
import sys
from typing import Any

import fal_client

from tests.api._compat import data_uri

APP = "fal-ai/nano-banana"


def _kind(update: Any) -> str:
    return type(update).__name__


def subscribe() -> dict[str, Any]:
    updates: list[str] = []
    result = fal_client.subscribe(
        APP,
        arguments={"prompt": "a teal mug on a desk (fal subscribe)", "output_format": "png"},
        with_logs=True,
        on_queue_update=lambda u: updates.append(_kind(u)),
    )
    return {"updates": updates, "result": result}


def submit_status_result() -> dict[str, Any]:
    handle = fal_client.submit(APP, arguments={"prompt": "a red kettle (fal submit)"})
    seen = []
    while True:
        status = fal_client.status(APP, handle.request_id, with_logs=True)
        seen.append(_kind(status))
        if isinstance(status, fal_client.Completed):
            break
    result = fal_client.result(APP, handle.request_id)
    return {"request_id": handle.request_id, "statuses": seen, "result": result}


def edit() -> dict[str, Any]:
    images = [data_uri((200, 30, 30)), data_uri((250, 250, 220))]
    handle = fal_client.submit(
        f"{APP}/edit",
        arguments={
            "prompt": "the mug in the first colour, lit like the second",
            "image_urls": images,
        },
    )
    return {"request_id": handle.request_id, "result": handle.get()}


def cancel() -> dict[str, Any]:
    handle = fal_client.submit(APP, arguments={"prompt": "a slow vase (fal cancel)"})
    fal_client.cancel(APP, handle.request_id)
    while not isinstance(status := handle.status(), fal_client.Completed):
        pass
    try:
        handle.get()
        outcome = "result"
    except fal_client.FalClientHTTPError as exc:
        outcome = f"{exc.status_code}: {exc.message}"
    return {"request_id": handle.request_id, "error": status.error, "outcome": outcome}


def blocked() -> dict[str, Any]:
    try:
        fal_client.subscribe(APP, arguments={"prompt": "a forbidden thing [[SAFETY]]"})
    except fal_client.FalClientHTTPError as exc:
        return {"status_code": exc.status_code, "message": exc.message}
    return {"status_code": None, "message": "no error"}


if __name__ == "__main__":
    flows = {f.__name__: f for f in (subscribe, submit_status_result, edit, cancel, blocked)}
    print(json.dumps(flows[sys.argv[1]]()))
