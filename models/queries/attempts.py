"""Queries on attempts: open before the call, close after it, observe outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from models.statuses import AttemptState
from models.tables import Attempt


def open_attempt(
    *,
    session: Session,
    attempt_id: str,
    item_id: str,
    batch_id: str,
    number: int,
    worker: str,
    reserved_micros: int,
    now: datetime,
) -> Attempt:
    attempt = Attempt(
        id=attempt_id,
        item_id=item_id,
        batch_id=batch_id,
        number=number,
        state=AttemptState.calling.value,
        worker=worker,
        reserved_micros=reserved_micros,
        started_at=now,
    )
    session.add(attempt)
    return attempt


def close_attempt(*, session: Session, attempt_id: str, values: dict[str, Any]) -> bool:
    """Record an attempt's outcome once: only an attempt still `calling` can be closed."""
    result = session.execute(
        update(Attempt)
        .where(Attempt.id == attempt_id, Attempt.state == AttemptState.calling.value)
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_state(*, session: Session, attempt_id: str, state: AttemptState) -> None:
    session.execute(update(Attempt).where(Attempt.id == attempt_id).values(state=state.value))


def get_attempt(*, session: Session, attempt_id: str) -> Attempt | None:
    return session.get(Attempt, attempt_id)


def attempts_of(*, session: Session, item_id: str) -> Sequence[Attempt]:
    return session.scalars(
        select(Attempt).where(Attempt.item_id == item_id).order_by(Attempt.number)
    ).all()


def window_observations(
    *, session: Session, since: datetime | None, until: datetime, started_after: datetime | None
) -> tuple[int, int]:
    """Calls that ended in (since, until]: successes, and 429s from calls started after the last
    window decrease (older 429s were already answered by that decrease). One statement."""
    succeeded = Attempt.state == AttemptState.succeeded.value
    fresh_429 = Attempt.state == AttemptState.rate_limited.value
    if started_after is not None:
        fresh_429 = and_(fresh_429, Attempt.started_at > started_after)
    query = select(func.count().filter(succeeded), func.count().filter(fresh_429)).where(
        Attempt.finished_at <= until
    )
    if since is not None:
        query = query.where(Attempt.finished_at > since)
    row = session.execute(query).one()
    return int(row[0] or 0), int(row[1] or 0)


def calls_started_since(*, session: Session, since: datetime) -> int:
    return int(session.scalar(select(func.count()).where(Attempt.started_at > since)) or 0)


def states_since(*, session: Session, since: datetime) -> dict[str, int]:
    """Counts of attempt states finished after ``since`` (for `stencil status`)."""
    query = (
        select(Attempt.state, func.count())
        .where(Attempt.finished_at > since)
        .group_by(Attempt.state)
    )
    return {state: count for state, count in session.execute(query)}
