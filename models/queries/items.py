"""Queries on items: bulk insert, claim for dispatch, lease, fence, list."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, select, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.statuses import IN_FLIGHT_ITEM, BatchStatus, ItemStatus
from models.tables import Batch, Item

COPY_THRESHOLD = 500
COPY_COLUMNS = (
    "id", "batch_id", "seq", "key", "variant", "row_label", "prompt", "refs", "aspect_ratio",
    "image_size", "fingerprint", "output_key", "status", "attempts", "no_image_count",
    "estimate_micros", "cost_micros", "reused_from", "content_type", "error_kind",
    "created_at", "updated_at", "finished_at", "force", "checks", "qa",
)  # fmt: skip
COPY_DEFAULTS = {"force": False}
COPY_JSON = ("refs", "checks")


def bulk_insert(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many items: COPY on Postgres for large manifests, executemany elsewhere."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        _copy_rows(session, rows)
    else:
        session.execute(insert(Item), list(rows))


def _copy_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    raw = session.connection().connection.driver_connection
    columns = ", ".join(f'"{c}"' for c in COPY_COLUMNS)
    with raw.cursor() as cursor, cursor.copy(f"COPY items ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(
                [
                    _json(row.get(c)) if c in COPY_JSON else row.get(c, COPY_DEFAULTS.get(c))
                    for c in COPY_COLUMNS
                ]
            )


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def get_item(*, session: Session, item_id: str) -> Item | None:
    return session.get(Item, item_id)


def list_items(
    *,
    session: Session,
    batch_id: str,
    statuses: Iterable[str] | None = None,
    after_seq: int = -1,
    limit: int | None = None,
) -> Sequence[Item]:
    """Items of a batch in row order; page with ``after_seq`` (the last seq seen)."""
    query = select(Item).where(Item.batch_id == batch_id, Item.seq > after_seq)
    if statuses is not None:
        query = query.where(Item.status.in_(list(statuses)))
    query = query.order_by(Item.seq)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def count_in_flight(*, session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Item)
            .where(Item.status.in_([s.value for s in IN_FLIGHT_ITEM]))
        )
        or 0
    )


def count_in_flight_for(*, session: Session, batch_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Item)
            .where(
                Item.batch_id == batch_id,
                Item.status.in_([s.value for s in IN_FLIGHT_ITEM]),
            )
        )
        or 0
    )


def claim_queued(
    *, session: Session, batch_id: str, limit: int, now: datetime, lease_s: float
) -> list[str]:
    """Claim up to ``limit`` due queued items of a batch for dispatch, in row order.

    ``FOR UPDATE SKIP LOCKED`` on Postgres lets several schedulers claim side by side without
    taking an item twice; SQLite serialises writers, so one dispatcher at a time is safe there.
    """
    if limit <= 0:
        return []
    due = (
        select(Item.id)
        .where(
            Item.batch_id == batch_id,
            Item.status == ItemStatus.queued.value,
            (Item.not_before.is_(None)) | (Item.not_before <= now),
        )
        .order_by(Item.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due).all())
    if not ids:
        return []
    # RETURNING: only the items this statement really moved (on SQLite a second dispatcher may
    # have taken some between the SELECT and the UPDATE)
    return list(
        session.scalars(
            update(Item)
            .where(Item.id.in_(ids), Item.status == ItemStatus.queued.value)
            .values(
                status=ItemStatus.dispatched.value,
                lease_expires_at=now + timedelta(seconds=lease_s),
                updated_at=now,
            )
            .returning(Item.id)
        ).all()
    )


def take_dispatched(
    *, session: Session, item_id: str, attempt_id: str, lease_s: float, now: datetime
) -> Item | None:
    """The fast path of a worker's start: take a dispatched item of a running batch in one
    statement, returning it; None when anything is unusual (the caller then looks closer)."""
    running_batch = (
        select(Batch.id)
        .where(Batch.id == Item.batch_id, Batch.status == BatchStatus.running.value)
        .exists()
    )
    return session.scalars(
        update(Item)
        .where(Item.id == item_id, Item.status == ItemStatus.dispatched.value, running_batch)
        .values(
            status=ItemStatus.running.value,
            current_attempt_id=attempt_id,
            attempts=Item.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
        .returning(Item)
        .execution_options(synchronize_session=False)
    ).first()


def _owned_by(item_id: str, attempt_id: str) -> ColumnElement[bool]:
    """The item is running under this attempt (the fence every attempt write goes through)."""
    return and_(
        Item.id == item_id,
        Item.current_attempt_id == attempt_id,
        Item.status == ItemStatus.running.value,
    )


def renew_lease(*, session: Session, item_id: str, attempt_id: str, lease_s: float) -> bool:
    now = utcnow()
    result = session.execute(
        update(Item)
        .where(_owned_by(item_id, attempt_id))
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def update_fenced(
    *, session: Session, item_id: str, attempt_id: str, values: dict[str, Any]
) -> bool:
    """Apply an attempt's result only if that attempt still owns the running item."""
    result = session.execute(update(Item).where(_owned_by(item_id, attempt_id)).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_dispatched(*, session: Session, item_id: str, values: dict[str, Any]) -> bool:
    """Move a dispatched item (not yet running) to new values, e.g. back to queued."""
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.status == ItemStatus.dispatched.value)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def expired_leases(*, session: Session, now: datetime, limit: int = 500) -> Sequence[Item]:
    return session.scalars(
        select(Item)
        .where(
            Item.status.in_([s.value for s in IN_FLIGHT_ITEM]),
            Item.lease_expires_at < now,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def succeeded_by_fingerprint(*, session: Session, fingerprints: Sequence[str]) -> dict[str, Item]:
    """The first succeeded item for each fingerprint (the reuse index)."""
    found: dict[str, Item] = {}
    for start in range(0, len(fingerprints), 1000):
        chunk = fingerprints[start : start + 1000]
        for item in session.scalars(
            select(Item)
            .where(Item.fingerprint.in_(chunk), Item.status == ItemStatus.succeeded.value)
            .order_by(Item.created_at)
        ):
            found.setdefault(item.fingerprint, item)
    return found


def add_cost(*, session: Session, item_id: str, micros: int) -> None:
    session.execute(
        update(Item).where(Item.id == item_id).values(cost_micros=Item.cost_micros + micros)
    )


def cheapest_queued(*, session: Session, batch_id: str) -> int | None:
    value = session.scalar(
        select(func.min(Item.estimate_micros)).where(
            Item.batch_id == batch_id, Item.status == ItemStatus.queued.value
        )
    )
    return None if value is None else int(value)


def set_reviews(*, session: Session, marks: Sequence[tuple[str, str, str | None]]) -> int:
    """Record ``(item_id, mark, note)`` review marks on items; the number of items updated."""
    if not marks:
        return 0
    now = utcnow()
    session.execute(
        update(Item),
        [
            {"id": item_id, "review": mark, "review_note": note or None, "updated_at": now}
            for item_id, mark, note in marks
        ],
    )
    return len(marks)
