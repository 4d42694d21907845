"""Queries on batches: insert, read, status, budget reservation and settlement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.queries import webhooks as webhook_queries
from models.statuses import ENDED_ITEM, BatchStatus, ItemStatus, QaState
from models.tables import Batch, Item


def get_batch(*, session: Session, batch_id: str, lock: bool = False) -> Batch | None:
    query = select(Batch).where(Batch.id == batch_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def list_batches(*, session: Session, limit: int = 50) -> Sequence[Batch]:
    return session.scalars(select(Batch).order_by(Batch.created_at.desc()).limit(limit)).all()


def active_batches(*, session: Session) -> Sequence[Batch]:
    """Batches dispatch may pick from: running, highest priority first, least recently served."""
    return session.scalars(
        select(Batch)
        .where(Batch.status == BatchStatus.running.value)
        .order_by(Batch.priority.desc(), Batch.last_dispatch_at.asc().nulls_first())
    ).all()


def open_batches(*, session: Session) -> Sequence[Batch]:
    """Batches not yet closed (anything but done)."""
    return session.scalars(select(Batch).where(Batch.finished_at.is_(None))).all()


def status_counts(*, session: Session, batch_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Item.status, func.count()).where(Item.batch_id == batch_id).group_by(Item.status)
    ).all()
    return {status: count for status, count in rows}


def set_status(
    *,
    session: Session,
    batch_id: str,
    status: BatchStatus,
    only_from: Sequence[BatchStatus],
    reason: str | None = None,
) -> bool:
    """Move a batch to ``status`` if it is in one of ``only_from``; True when it moved."""
    values: dict[str, object] = {"status": status.value}
    if reason is not None:
        values["stop_reason"] = reason
    result = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.status.in_([s.value for s in only_from]))
        .values(**values)
    )
    moved = bool(result.rowcount)  # type: ignore[attr-defined]
    if moved and status is BatchStatus.stopped:  # its webhook event, in this transaction
        webhook_queries.batch_stopped(session=session, batch_id=batch_id, reason=reason or "")
    return moved


def touch_dispatch(*, session: Session, batch_id: str, now: datetime) -> None:
    session.execute(update(Batch).where(Batch.id == batch_id).values(last_dispatch_at=now))


def reserve_returning(*, session: Session, batch_id: str, micros: int) -> Batch | None:
    """Reserve ``micros`` of the batch's budget in one conditional UPDATE and return the batch;
    None when the reservation would not fit (concurrent workers cannot overshoot the cap)."""
    return session.scalars(
        update(Batch)
        .where(
            Batch.id == batch_id,
            (Batch.budget_micros.is_(None))
            | (Batch.spent_micros + Batch.reserved_micros + micros <= Batch.budget_micros),
        )
        .values(reserved_micros=Batch.reserved_micros + micros)
        .returning(Batch)
        .execution_options(synchronize_session=False)
    ).first()


def settle_budget(*, session: Session, batch_id: str, reserved: int, spent: int) -> None:
    """Release a reservation and record what was really spent."""
    session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(
            reserved_micros=Batch.reserved_micros - reserved,
            spent_micros=Batch.spent_micros + spent,
        )
    )


def close_if_finished(*, session: Session, batch_id: str, now: datetime | None = None) -> bool:
    """Mark a batch done (or stamp a cancelled one) when none of its items is still open."""
    pending = session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.batch_id == batch_id, Item.status.not_in([s.value for s in ENDED_ITEM]))
    )
    if pending or _checks_pending(session, batch_id):
        return False
    batch = get_batch(session=session, batch_id=batch_id)
    if batch is None or batch.finished_at is not None:
        return False
    if batch.status in (BatchStatus.running.value, BatchStatus.paused.value):
        batch.status = BatchStatus.done.value
    batch.finished_at = now or utcnow()
    webhook_queries.batch_closed(session=session, batch=batch)  # its event, in this transaction
    return True


def _checks_pending(session: Session, batch_id: str) -> bool:
    """A stored image whose checks have not run yet keeps the batch open (worker/checks)."""
    return bool(
        session.scalar(
            select(Item.id)
            .where(
                Item.batch_id == batch_id,
                Item.status == ItemStatus.succeeded.value,
                Item.qa == QaState.pending.value,
            )
            .limit(1)
        )
    )


def end_queued_items(
    *, session: Session, batch_id: str, status: ItemStatus, message: str | None = None
) -> int:
    """End every queued item of a batch with ``status`` (cancel, budget exhausted). A cancel also
    ends items waiting for a twin; a budget does not (they cost nothing)."""
    now = utcnow()
    ending = [ItemStatus.queued.value]
    if status is ItemStatus.cancelled:
        ending += [ItemStatus.waiting.value, ItemStatus.pending_deps.value]
    result = session.execute(
        update(Item)
        .where(Item.batch_id == batch_id, Item.status.in_(ending))
        .values(
            status=status.value,
            error_kind=status.value if message else None,
            error_message=message,
            finished_at=now,
            updated_at=now,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
