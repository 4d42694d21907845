"""Answers built from the CLI's views (``stencil/views.py``) plus what HTTP clients need: the
request's URLs, images signed for the client, queue position, start time and ETA."""

from __future__ import annotations

import base64
import binascii
import copy
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from api.links import Links
from api.problems import ApiProblem
from models.base import utcnow
from models.queries import progress as progress_queries
from models.queries import webhooks as webhook_queries
from models.statuses import BatchStatus
from models.tables import Batch, Item
from stencil.catalog import micros_to_usd
from stencil.views import batch_view, item_view

BIG_REQUEST = 10_000  # items; counting them takes milliseconds, so their view is kept a moment
BIG_VIEW_TTL_S = 1.0
_big_views: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
_big_lock = threading.Lock()


def request_view(session: Session, batch: Batch, links: Links) -> dict[str, Any]:
    """The poll answer; for a request of BIG_REQUEST items or more, at most BIG_VIEW_TTL_S old
    (many clients polling a big request share one count of its items)."""
    if batch.item_count < BIG_REQUEST:
        return _request_view(session, batch, links)
    key = (batch.id, links.base)
    now = time.monotonic()
    with _big_lock:
        found = _big_views.get(key)
    if found is not None and found[0] > now:
        return copy.deepcopy(found[1])
    view = _request_view(session, batch, links)
    with _big_lock:
        for stale in [k for k, (until, _) in _big_views.items() if until <= now]:
            del _big_views[stale]
        _big_views[key] = (now + BIG_VIEW_TTL_S, copy.deepcopy(view))
    return view


def _request_view(session: Session, batch: Batch, links: Links) -> dict[str, Any]:
    view = batch_view(session, batch, storage=links.storage, ttl_s=links.ttl_s)
    view.update(links.request_urls(batch.id))
    started = progress_queries.first_attempt_at(session=session, batch_id=batch.id)
    queued = view["counts"].get("queued", 0)
    running = view["status"] == BatchStatus.running.value
    view["queue_position"] = (
        progress_queries.queued_ahead(session=session, priority=batch.priority)
        if queued and running
        else 0
    )
    view["started_at"] = started.isoformat() if started else None
    view["eta_s"] = _eta_s(started, view["ended"], view["total"]) if running else None
    hook = webhook_queries.subscription(session=session, batch_id=batch.id)
    view["webhook_url"] = hook[1] if hook else None
    return view


def _eta_s(started: datetime | None, ended: int, total: int) -> float | None:
    """Seconds until the last item ends at the pace so far; None before anything has ended."""
    remaining = total - ended
    if remaining <= 0:
        return 0.0
    if started is None or ended <= 0:
        return None
    elapsed = (utcnow() - started).total_seconds()
    return round(elapsed / ended * remaining, 1)


def item_answer(item: Item, batch: Batch, links: Links) -> dict[str, Any]:
    return links.signed_item(item_view(item, batch, storage=links.storage, ttl_s=links.ttl_s))


def summary(batch: Batch, links: Links) -> dict[str, Any]:
    return {
        "request_id": batch.id,
        "name": batch.name,
        "status": batch.status,
        "items": batch.item_count,
        "cost_usd": micros_to_usd(batch.spent_micros),
        "estimated_cost_usd": micros_to_usd(batch.estimated_micros),
        "created_at": batch.created_at.isoformat(),
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
        "status_url": links.request_urls(batch.id)["status_url"],
    }


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise bad_cursor() from exc


def bad_cursor() -> ApiProblem:
    return ApiProblem(
        422,
        "the request is not valid",
        problems=[
            {
                "file": "request",
                "row": None,
                "field": "query.cursor",
                "message": "is not a cursor this API gave out (use the `next` URL as it is)",
            }
        ],
    )
