"""The JSON sidecar written beside each image: what made it, what it cost, which attempt."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from models.tables import Attempt, Batch, Item
from stencil.catalog import micros_to_usd
from stencil.errors import StorageError
from stencil.storage.base import Storage
from worker.providers.base import ImageResult


def sidecar_key(output_key: str) -> str:
    return output_key + ".json"


def build_sidecar(
    *, batch: Batch, item: Item, attempt: Attempt, result: ImageResult, finished_at: datetime
) -> bytes:
    body: dict[str, Any] = {
        "request_id": item.id,
        "batch_id": batch.id,
        "attempt_id": attempt.id,
        "key": item.key,
        "variant": item.variant,
        "prompt": item.prompt,
        "provider": batch.provider,
        "model": batch.model,
        "model_version": result.model_version,
        "response_id": result.response_id,
        "preview": result.preview,
        "aspect_ratio": item.aspect_ratio,
        "image_size": item.image_size,
        "references": [{"digest": r["digest"], "source": r.get("source")} for r in item.refs],
        "fingerprint": item.fingerprint,
        "tokens": {"prompt": result.prompt_tokens, "output": result.output_tokens},
        "cost_micros": result.cost_micros,
        "cost_usd": micros_to_usd(result.cost_micros),
        "content_type": result.mime,
        "started_at": attempt.started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
    }
    return json.dumps(body, indent=2, sort_keys=True).encode()


def parse_sidecar(data: bytes) -> dict[str, Any]:
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError("sidecar is not a JSON object")
    return body


def image_intact(storage: Storage, *, output_key: str, fingerprint: str) -> bool:
    """The image at ``output_key`` is still stored, beside a sidecar naming ``fingerprint``
    (what reuse checks: a deleted or replaced image is not handed out again)."""
    try:
        body = parse_sidecar(storage.get(sidecar_key(output_key)))
        return body.get("fingerprint") == fingerprint and storage.exists(output_key)
    except (StorageError, ValueError):
        return False
