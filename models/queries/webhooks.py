"""Queries on webhooks: endpoints, a request's subscription, deliveries and their attempts.

Events are written here, in the transaction of the change that causes them (a batch closed or
stopped: see ``models/queries/batches.py``), so an event is never lost between the change and
the send. The scheduler's sender (``scheduler/webhooks.py``) claims due deliveries with a lease.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.api_tables import (
    RequestWebhook,
    Tenant,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from models.base import utcnow
from models.statuses import BatchStatus, ItemStatus, QaState
from models.tables import Batch, Item
from stencil.catalog import micros_to_usd

COMPLETED = "request.completed"  # every item has ended (counts, checks and cost in data)
FAILED = "request.failed"  # the request stopped: credentials, budget or cancelled
EVENTS = (COMPLETED, FAILED)

PENDING = "pending"  # due at next_attempt_at (pushed past an attempt under way, as a lease)
DELIVERED = "delivered"  # a 2xx answer
FAILED_STATE = "failed"  # the retry schedule ran out
DISABLED = "disabled"  # the endpoint answered 410 Gone (or was disabled for that)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def endpoint_for(*, session: Session, tenant_id: str, url: str) -> WebhookEndpoint:
    """The tenant's endpoint for ``url`` (created, or enabled again: a new request names it)."""
    endpoint = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.url == url
        )
    ).first()
    if endpoint is None:
        endpoint = WebhookEndpoint(
            id=new_id("we"), tenant_id=tenant_id, url=url, created_at=utcnow()
        )
        session.add(endpoint)
    else:
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
    session.flush()
    return endpoint


def subscribe(*, session: Session, batch_id: str, endpoint_id: str, events: list[str]) -> None:
    session.add(RequestWebhook(batch_id=batch_id, endpoint_id=endpoint_id, events=events))
    session.flush()


def batch_closed(*, session: Session, batch: Batch) -> None:
    """The event for a batch whose last item just ended (none when it was already stopped)."""
    if batch.status == BatchStatus.stopped.value:
        return
    counts = _counts(session, batch.id)
    if batch.status == BatchStatus.cancelled.value:
        _enqueue(session, batch, FAILED, counts, reason="cancelled")
    elif counts.get(ItemStatus.budget_exhausted.value):
        _enqueue(session, batch, FAILED, counts, reason="budget")
    else:
        _enqueue(session, batch, COMPLETED, counts, reason=None)


def batch_stopped(*, session: Session, batch_id: str, reason: str) -> None:
    """The event for a batch that stopped dispatching (credentials refused, model gone...)."""
    batch = session.get(Batch, batch_id, populate_existing=True)  # the UPDATE synced nothing
    if batch is not None:
        _enqueue(session, batch, FAILED, _counts(session, batch_id), reason=f"stopped: {reason}")


def _counts(session: Session, batch_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Item.status, func.count()).where(Item.batch_id == batch_id).group_by(Item.status)
    ).all()
    return {status: count for status, count in rows}


def _check_counts(session: Session, batch_id: str) -> dict[str, int]:
    """Images whose automatic checks passed, failed (or have not run: a stopped request)."""
    rows = session.execute(
        select(Item.qa, func.count())
        .where(Item.batch_id == batch_id, Item.qa.is_not(None))
        .group_by(Item.qa)
    ).all()
    found = {str(state): int(count) for state, count in rows}
    return {state.value: found.get(state.value, 0) for state in QaState}


def _enqueue(
    session: Session, batch: Batch, event: str, counts: dict[str, int], *, reason: str | None
) -> None:
    found = session.execute(
        select(RequestWebhook, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == RequestWebhook.endpoint_id)
        .where(RequestWebhook.batch_id == batch.id)
    ).first()
    if found is None:
        return
    subscription, endpoint = found
    if event not in subscription.events or endpoint.disabled_at is not None:
        return
    now = utcnow()
    data: dict[str, Any] = {
        "request_id": batch.id,
        "name": batch.name,
        "status": BatchStatus.done.value
        if batch.status == BatchStatus.running.value
        else batch.status,
        "reason": reason,
        "stop_reason": batch.stop_reason,
        "total": sum(counts.values()),
        "counts": dict(sorted(counts.items())),
        "checks": _check_counts(session, batch.id),
        "cost_usd": micros_to_usd(batch.spent_micros),
        "estimated_cost_usd": micros_to_usd(batch.estimated_micros),
        "created_at": batch.created_at.isoformat(),
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
    }
    payload = {"type": event, "timestamp": now.isoformat(), "data": data}
    session.add(
        WebhookDelivery(
            id=new_id("msg"),
            tenant_id=endpoint.tenant_id,
            batch_id=batch.id,
            endpoint_id=endpoint.id,
            event_type=event,
            payload=json.dumps(payload, separators=(",", ":")),
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    session.flush()


@dataclass(frozen=True)
class Due:
    """A delivery claimed for one attempt, with what sending it needs."""

    delivery_id: str
    number: int  # this attempt's number, from 1
    url: str
    secret: str
    payload: str


def claim_due(*, session: Session, now: datetime, lease: timedelta, limit: int) -> list[Due]:
    """Deliveries due now, each claimed by pushing ``next_attempt_at`` past ``now + lease`` with
    a conditional UPDATE (two senders cannot claim the same attempt)."""
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint.url, Tenant.webhook_secret)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Tenant, Tenant.id == WebhookDelivery.tenant_id)
        .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    ).all()
    claimed = []
    for delivery, url, secret in rows:
        moved = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.state == PENDING,
                WebhookDelivery.next_attempt_at == delivery.next_attempt_at,
            )
            .values(next_attempt_at=now + lease)
        ).rowcount  # type: ignore[attr-defined]
        if moved:
            claimed.append(Due(delivery.id, delivery.attempts + 1, url, secret, delivery.payload))
    return claimed


def record_attempt(
    *,
    session: Session,
    due: Due,
    started_at: datetime,
    duration_ms: int,
    status_code: int | None,
    error: str | None,
    next_at: datetime | None,
) -> str:
    """Record one attempt and move the delivery on; returns its new state. ``next_at`` is when
    to try again after a failure (None: the schedule ran out)."""
    session.add(
        WebhookAttempt(
            id=new_id("wa"),
            delivery_id=due.delivery_id,
            number=due.number,
            started_at=started_at,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error,
        )
    )
    now = utcnow()
    values: dict[str, Any] = {"attempts": due.number}
    if status_code is not None and 200 <= status_code < 300:
        values.update(state=DELIVERED, delivered_at=now, next_attempt_at=None)
    elif status_code == 410:
        values.update(state=DISABLED, next_attempt_at=None)
        _disable_endpoint(session, due.delivery_id, now)
    elif next_at is None:
        values.update(state=FAILED_STATE, next_attempt_at=None)
    else:
        values.update(state=PENDING, next_attempt_at=next_at)
    session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == due.delivery_id).values(**values)
    )
    return str(values["state"])


def _disable_endpoint(session: Session, delivery_id: str, now: datetime) -> None:
    """410 Gone: the endpoint gets nothing more (its other pending deliveries are disabled)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return
    session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == delivery.endpoint_id)
        .values(disabled_at=now, disabled_reason="the endpoint answered 410 Gone")
    )
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == delivery.endpoint_id,
            WebhookDelivery.state == PENDING,
        )
        .values(state=DISABLED, next_attempt_at=None)
    )


def deliveries(
    *, session: Session, batch_id: str
) -> list[tuple[WebhookDelivery, str, list[WebhookAttempt]]]:
    """A batch's deliveries, oldest first, each with its endpoint URL and its attempts."""
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint.url)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.batch_id == batch_id)
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    ).all()
    ids = [delivery.id for delivery, _ in rows]
    attempts: dict[str, list[WebhookAttempt]] = {i: [] for i in ids}
    if ids:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(ids))
            .order_by(WebhookAttempt.number)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [(delivery, url, attempts[delivery.id]) for delivery, url in rows]


def redeliver(*, session: Session, batch_id: str, delivery_id: str) -> bool:
    """Send a delivery again now, whatever its state (its endpoint is enabled again)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.batch_id != batch_id:
        return False
    delivery.state = PENDING
    delivery.next_attempt_at = utcnow()
    session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == delivery.endpoint_id)
        .values(disabled_at=None, disabled_reason=None)
    )
    session.flush()
    return True


def subscription(*, session: Session, batch_id: str) -> tuple[RequestWebhook, str] | None:
    row = session.execute(
        select(RequestWebhook, WebhookEndpoint.url)
        .join(WebhookEndpoint, WebhookEndpoint.id == RequestWebhook.endpoint_id)
        .where(RequestWebhook.batch_id == batch_id)
    ).first()
    return None if row is None else (row[0], row[1])
