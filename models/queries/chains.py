"""Queries on chained items: those that use another item's image as a reference.

A chained reference on ``items.refs`` is ``{"item": <dependency id>, "source": "item:KEY#N",
"digest", "mime", "key"}``; digest, mime and key are null until the dependency succeeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from models.statuses import ENDED_ITEM, ItemStatus
from models.tables import Item

SWEEP_LIMIT = 1000


def chained(item: Item) -> list[dict[str, Any]]:
    """The item's chained references."""
    return [ref for ref in item.refs or () if ref.get("item")]


def waits_on(item: Item) -> set[str]:
    """Ids of the dependencies whose image the item does not have yet."""
    return {ref["item"] for ref in chained(item) if not ref.get("digest")}


def pending_dependents(*, session: Session, batch_id: str, item_id: str) -> list[Item]:
    """Items of the batch waiting for ``item_id``'s image, locked until the transaction ends
    (two dependencies finishing at once must not overwrite each other's part of ``refs``)."""
    rows = session.scalars(
        select(Item)
        .where(
            Item.batch_id == batch_id,
            Item.status == ItemStatus.pending_deps.value,
            cast(Item.refs, Text).contains(item_id),  # ids are unique random strings
        )
        .order_by(Item.seq)
        .with_for_update()
    ).all()
    return [item for item in rows if item_id in waits_on(item)]


def pending_items(*, session: Session, limit: int = SWEEP_LIMIT) -> Sequence[Item]:
    """Waiting chained items of every batch, oldest first (the sweeper's safety net)."""
    return session.scalars(
        select(Item)
        .where(Item.status == ItemStatus.pending_deps.value)
        .order_by(Item.created_at)
        .limit(limit)
    ).all()


def pending_items_of(*, session: Session, batch_id: str) -> Sequence[Item]:
    """Waiting chained items of one batch."""
    return session.scalars(
        select(Item)
        .where(Item.batch_id == batch_id, Item.status == ItemStatus.pending_deps.value)
        .order_by(Item.seq)
    ).all()


def ended_dependents(*, session: Session, batch_id: str, item_ids: Sequence[str]) -> list[Item]:
    """Every item of the batch that ended without an image and depends, directly or through
    others, on ``item_ids``. A dependent that has its image stays as it is: regenerating it is
    the user's choice (reject it too)."""
    ended = [s.value for s in ENDED_ITEM if s is not ItemStatus.succeeded]
    rows = [
        item
        for item in session.scalars(
            select(Item).where(Item.batch_id == batch_id, Item.status.in_(ended)).order_by(Item.seq)
        ).all()
        if chained(item)
    ]
    found: dict[str, Item] = {}
    frontier = set(item_ids)
    while frontier:
        step = [
            item
            for item in rows
            if item.id not in found and any(ref["item"] in frontier for ref in chained(item))
        ]
        found.update((item.id, item) for item in step)
        frontier = {item.id for item in step}
    return [item for item in rows if item.id in found]
