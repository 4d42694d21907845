"""The fleet at a glance (`stencil status`): window, in flight, recent 429 share, throughput."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.base import utcnow
from models.queries import attempts as attempt_queries
from models.queries import items as item_queries
from models.queries.window import get_window
from models.statuses import AttemptState, ItemStatus
from models.tables import Item
from stencil.settings import Settings

RECENT = timedelta(minutes=1)


def fleet_status(*, session: Session, settings: Settings) -> dict[str, Any]:
    now = utcnow()
    window = get_window(session=session, initial=settings.window_initial)
    recent = attempt_queries.states_since(session=session, since=now - RECENT)
    calls = sum(recent.values())
    queued = session.scalar(
        select(func.count()).select_from(Item).where(Item.status == ItemStatus.queued.value)
    )
    return {
        "window": round(window.limit, 2),
        "window_ceiling": settings.window_ceiling,
        "last_429_window": round(window.w_max, 2) or None,
        "rpm_ceiling": settings.rpm_ceiling,
        "in_flight": item_queries.count_in_flight(session=session),
        "queued": int(queued or 0),
        "calls_last_minute": calls,
        "share_429_last_minute": round(recent.get(AttemptState.rate_limited.value, 0) / calls, 4)
        if calls
        else 0.0,
        "images_per_minute": recent.get(AttemptState.succeeded.value, 0),
        "updated_at": window.updated_at.isoformat(),
    }
