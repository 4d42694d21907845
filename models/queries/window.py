"""The fleet's one dispatch window row: read it, lock it, write it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.base import utcnow
from models.tables import FleetWindow

WINDOW_ROW = 1


def get_window(*, session: Session, initial: float, lock: bool = False) -> FleetWindow:
    """The window row, created at ``initial`` on first use."""
    query = select(FleetWindow).where(FleetWindow.id == WINDOW_ROW)
    if lock:
        query = query.with_for_update()
    window = session.scalars(query).first()
    if window is not None:
        return window
    try:  # first use; another scheduler may be creating the row at this very moment
        with session.begin_nested():
            session.add(FleetWindow(id=WINDOW_ROW, limit=initial, w_max=0.0, updated_at=utcnow()))
    except IntegrityError:
        pass
    return session.scalars(query).one()
