"""Queries for the automatic checks: the queue of stored images to check, and their outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.statuses import ItemStatus, QaState
from models.tables import Item


def due(*, session: Session, limit: int) -> Sequence[Item]:
    """Succeeded items whose checks have not run, oldest first."""
    return session.scalars(
        select(Item)
        .where(Item.qa == QaState.pending.value, Item.status == ItemStatus.succeeded.value)
        .order_by(Item.updated_at)
        .limit(limit)
    ).all()


def pending_count(*, session: Session, batch_id: str) -> int:
    """Stored images of the batch whose checks have not run yet."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Item)
            .where(
                Item.batch_id == batch_id,
                Item.qa == QaState.pending.value,
                Item.status == ItemStatus.succeeded.value,
            )
        )
        or 0
    )


def hashes(*, session: Session, batch_id: str) -> list[tuple[str, str, int, str, str]]:
    """(id, key, variant, fingerprint, hash) of the batch's checked images."""
    rows = session.execute(
        select(Item.id, Item.key, Item.variant, Item.fingerprint, Item.qa_hash).where(
            Item.batch_id == batch_id, Item.qa_hash.is_not(None)
        )
    ).all()
    return [(r[0], r[1], r[2], r[3], r[4] or "") for r in rows]


def record(*, session: Session, item_id: str, output_key: str, values: dict[str, Any]) -> bool:
    """Set the outcome, unless the item moved on meanwhile (retried: a new image to check)."""
    result = session.execute(
        update(Item)
        .where(
            Item.id == item_id,
            Item.qa == QaState.pending.value,
            Item.status == ItemStatus.succeeded.value,
            Item.output_key == output_key,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
