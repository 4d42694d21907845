"""Queries for a request's progress over HTTP: when its first call started, what is ahead of it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.statuses import BatchStatus, ItemStatus
from models.tables import Attempt, Batch, Item


def first_attempt_at(*, session: Session, batch_id: str) -> datetime | None:
    return session.scalar(select(func.min(Attempt.started_at)).where(Attempt.batch_id == batch_id))


def queued_ahead(*, session: Session, priority: int) -> int:
    """Queued items of running batches with a higher priority: dispatched before any of ours.
    Usually there is no such batch, and nothing is counted."""
    ahead = session.scalars(
        select(Batch.id).where(Batch.status == BatchStatus.running.value, Batch.priority > priority)
    ).all()
    if not ahead:
        return 0
    return int(
        session.scalar(
            select(func.count())
            .select_from(Item)
            .where(Item.batch_id.in_(ahead), Item.status == ItemStatus.queued.value)
        )
        or 0
    )
