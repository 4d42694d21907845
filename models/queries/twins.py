"""Twins: items of the same fingerprint (any batch). One of them is paid for; the others wait
for it and are completed by reference, so running a manifest again, or three times at once,
never pays twice for the same image.

A worker starting an item looks for a twin under a lock on the fingerprint (a transaction-scoped
advisory lock on Postgres; SQLite serialises writers already): a succeeded twin completes the
item at once, a running twin makes it ``waiting``. Waiting items are settled when their twin ends:
succeeded gives them its image; anything else sends them back to the queue to be paid for once.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, aliased

from models.statuses import ENDED_ITEM, BatchStatus, ItemStatus
from models.tables import Batch, Item

SETTLE_LIMIT = 1000


def lock_fingerprint(*, session: Session, fingerprint: str) -> None:
    """Serialise twin decisions for one fingerprint until the transaction ends."""
    if session.connection().dialect.name == "postgresql":
        key = zlib.crc32(fingerprint.encode()) - 2**31
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def find_twin(*, session: Session, item: Item) -> Item | None:
    """A succeeded twin if there is one (oldest first), else a running one, else None."""
    for status in (ItemStatus.succeeded, ItemStatus.running):
        twin = session.scalars(
            select(Item)
            .where(
                Item.fingerprint == item.fingerprint,
                Item.status == status.value,
                Item.id != item.id,
            )
            .order_by(Item.created_at)
            .limit(1)
        ).first()
        if twin is not None:
            return twin
    return None


def complete_by_reference(*, session: Session, item_id: str, source: Item, now: datetime) -> bool:
    """A dispatched item gets the source's image at no cost."""
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.status == ItemStatus.dispatched.value)
        .values(**_reference_values(source, now))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def wait_for(*, session: Session, item_id: str, source_id: str, now: datetime) -> bool:
    """A dispatched item waits for its running twin instead of paying for the same image."""
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.status == ItemStatus.dispatched.value)
        .values(
            status=ItemStatus.waiting.value,
            reused_from=source_id,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def settle_waiters(*, session: Session, now: datetime, source_id: str | None = None) -> int:
    """Settle waiting items whose twin has ended, or whose twin's batch no longer runs it.

    With ``source_id`` only that twin's waiters (the worker that just finished it); without it,
    every waiting item (the sweeper). Returns how many items moved.
    """
    source = aliased(Item)
    query = (
        select(Item, source, Batch.status)
        .join(source, source.id == Item.reused_from)
        .join(Batch, Batch.id == source.batch_id)
        .where(Item.status == ItemStatus.waiting.value)
        .limit(SETTLE_LIMIT)
    )
    if source_id is not None:
        query = query.where(Item.reused_from == source_id)
    moved = 0
    for waiter, twin, batch_status in session.execute(query).all():
        if twin.status == ItemStatus.succeeded.value:
            values = _reference_values(twin, now)
        elif _still_coming(twin.status, batch_status):
            continue
        else:
            values = _requeue_values(now)
        moved += _move_waiter(session, waiter.id, values)
    return moved


def requeue_waiter(*, session: Session, item_id: str, now: datetime) -> int:
    """Send a waiting item back to the queue: it will be generated itself."""
    return _move_waiter(session, item_id, _requeue_values(now))


def _move_waiter(session: Session, item_id: str, values: dict[str, Any]) -> int:
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.status == ItemStatus.waiting.value)
        .values(**values)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _requeue_values(now: datetime) -> dict[str, Any]:
    return {"status": ItemStatus.queued.value, "reused_from": None, "updated_at": now}


def orphan_waiters(*, session: Session) -> Sequence[str]:
    """Waiting items whose twin no longer exists (deleted batch): ids to send back to the queue."""
    source = aliased(Item)
    return session.scalars(
        select(Item.id)
        .outerjoin(source, source.id == Item.reused_from)
        .where(Item.status == ItemStatus.waiting.value, source.id.is_(None))
        .limit(SETTLE_LIMIT)
    ).all()


def _still_coming(status: str, batch_status: str) -> bool:
    """The twin will still produce a result: it is in flight, or queued in a batch that runs."""
    if ItemStatus(status) in ENDED_ITEM:
        return False
    if status in (ItemStatus.running.value, ItemStatus.dispatched.value):
        return True
    return batch_status == BatchStatus.running.value


def _reference_values(source: Item, now: datetime) -> dict[str, Any]:
    return {
        "status": ItemStatus.succeeded.value,
        "output_key": source.output_key,
        "content_type": source.content_type,
        "reused_from": source.reused_from or source.id,
        "current_attempt_id": None,
        "lease_expires_at": None,
        "error_kind": None,
        "error_message": None,
        "updated_at": now,
        "finished_at": now,
    }
