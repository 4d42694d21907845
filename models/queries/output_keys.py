"""Queries on output key owners: one item owns a storage key, so no batch overwrites another's.

An owner keeps its key while it is succeeded or not yet ended; an owner that ended without an
image (failed, blocked, cancelled, ...) or no longer exists gives the key up to the next claim.
Claims are fenced: the primary key makes two concurrent claims of a free key collide, and a
take-over only moves the key away from the owner it was seen with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models.statuses import ENDED_ITEM, ItemStatus
from models.tables import Item, OutputKey

CHUNK = 500
ENDED_WITHOUT_IMAGE = frozenset(s.value for s in ENDED_ITEM - {ItemStatus.succeeded})


@dataclass(frozen=True)
class Owner:
    """Who holds a key now: the item, its batch, and the item's status (None: item gone)."""

    key: str
    item_id: str
    batch_id: str
    status: str | None
    fingerprint: str | None

    @property
    def holds(self) -> bool:
        """True while the key is the owner's: its image is there or may still come."""
        return self.status is not None and self.status not in ENDED_WITHOUT_IMAGE

    def describe(self) -> str:
        return f"item {self.item_id} of batch {self.batch_id} ({self.status or 'deleted'})"


def owners(*, session: Session, keys: Iterable[str]) -> dict[str, Owner]:
    """The current owner of each of ``keys`` that has one."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, Owner] = {}
    for start in range(0, len(wanted), CHUNK):
        query = (
            select(OutputKey, Item.status, Item.fingerprint)
            .outerjoin(Item, Item.id == OutputKey.item_id)
            .where(OutputKey.key.in_(wanted[start : start + CHUNK]))
        )
        for row, status, fingerprint in session.execute(query):
            found[row.key] = Owner(row.key, row.item_id, row.batch_id, status, fingerprint)
    return found


def claim(*, session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Record new owners (``key``, ``item_id``, ``batch_id``, ``claimed_at``); raises
    IntegrityError when another transaction claimed one of the keys first."""
    if rows:
        session.execute(insert(OutputKey), list(rows))


def take_over(
    *, session: Session, key: str, item_id: str, batch_id: str, previous: str, now: datetime
) -> bool:
    """Move ``key`` from the owner it was seen with (``previous`` item id) to a new item;
    False when someone else moved it meanwhile."""
    result = session.execute(
        update(OutputKey)
        .where(OutputKey.key == key, OutputKey.item_id == previous)
        .values(item_id=item_id, batch_id=batch_id, claimed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_for_write(
    *, session: Session, key: str, item_id: str, batch_id: str, now: datetime
) -> Owner | None:
    """The fenced check before a worker writes ``key``: None when the item owns it (claiming it
    if it is free or its owner ended without an image), else the owner that holds it."""
    for _ in range(3):  # a concurrent claim can only win once per round; three is plenty
        owner = owners(session=session, keys=[key]).get(key)
        if owner is None:
            if _insert_if_free(session, key=key, item_id=item_id, batch_id=batch_id, now=now):
                return None
            continue
        if owner.item_id == item_id:
            return None
        if owner.holds:
            return owner
        if take_over(
            session=session,
            key=key,
            item_id=item_id,
            batch_id=batch_id,
            previous=owner.item_id,
            now=now,
        ):
            return None
    return owners(session=session, keys=[key]).get(key)


def _insert_if_free(
    session: Session, *, key: str, item_id: str, batch_id: str, now: datetime
) -> bool:
    values = {"key": key, "item_id": item_id, "batch_id": batch_id, "claimed_at": now}
    dialect = postgresql if session.connection().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(OutputKey).values(**values).on_conflict_do_nothing()
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def taken(*, session: Session, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` have an owner (any status): candidates for a new version skip them."""
    wanted = list(dict.fromkeys(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        found.update(
            session.scalars(
                select(OutputKey.key).where(OutputKey.key.in_(wanted[start : start + CHUNK]))
            )
        )
    return found
