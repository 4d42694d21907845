"""Heartbeats of running processes, and the database's own clock (`stencil doctor`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from models.tables import Heartbeat

FORGET_AFTER = timedelta(days=1)  # rows of processes that died without a goodbye


def database_now(*, session: Session) -> datetime:
    """The database server's clock, in UTC (SQLite's is this host's, with milliseconds)."""
    if session.get_bind().dialect.name == "sqlite":
        raw = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
        return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)
    value = session.scalar(select(func.clock_timestamp()))
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def beat(*, session: Session, process_id: str, role: str, host: str, pid: int) -> None:
    """Refresh this process's row (created on its first beat) at the database's time."""
    now = database_now(session=session)
    result = session.execute(
        update(Heartbeat).where(Heartbeat.id == process_id).values(beat_at=now)
    )
    if getattr(result, "rowcount", 0):
        return
    session.execute(delete(Heartbeat).where(Heartbeat.beat_at < now - FORGET_AFTER))
    session.add(
        Heartbeat(id=process_id, role=role, host=host, pid=pid, started_at=now, beat_at=now)
    )


def remove(*, session: Session, process_id: str) -> None:
    """Forget a process that stops cleanly."""
    session.execute(delete(Heartbeat).where(Heartbeat.id == process_id))


def list_heartbeats(*, session: Session) -> Sequence[Heartbeat]:
    """Every recorded process, the most recent beat first."""
    return session.scalars(select(Heartbeat).order_by(Heartbeat.beat_at.desc())).all()
