"""Bounded dispatch: claim due items, at most what the fleet window allows, fair across batches.

Each tick locks the window row (so several schedulers take turns), folds the calls that ended
since the last tick into the window, and claims ``floor(window) - in_flight`` items: the highest
priority first, round-robin across batches of equal priority. Item ids go to the broker only
after the claim has committed, so a worker always finds its item dispatched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models.base import utcnow
from models.db import session_scope
from models.queries import attempts as attempt_queries
from models.queries import batches as batch_queries
from models.queries import items as item_queries
from models.queries.window import get_window
from models.statuses import ItemStatus
from scheduler import window as controller
from stencil.settings import Settings

log = logging.getLogger(__name__)
Sender = Callable[[list[str]], None]  # puts item ids on the broker
OBSERVE_LAG = timedelta(seconds=0.15)  # results commit a moment after their finished_at


@dataclass(frozen=True)
class Tick:
    """What one dispatch tick saw and did."""

    window: float
    in_flight: int
    dispatched: list[str]


def dispatch_tick(*, settings: Settings, send: Sender) -> Tick:
    """One round: update the window from outcomes, claim what it allows, send the ids."""
    now = utcnow()
    with session_scope() as session:
        limit, in_flight = _update_window(session, settings, now)
        allowed = math.floor(limit) - in_flight
        allowed = min(allowed, _rpm_room(session, settings, now))
        claimed = _claim_fairly(session, settings, allowed, now) if allowed > 0 else []
    if claimed:
        try:
            send(claimed)
        except Exception:
            log.warning("broker unavailable; %d items go back to the queue", len(claimed))
            _unclaim(claimed)
            claimed = []
    return Tick(window=limit, in_flight=in_flight, dispatched=claimed)


def claim_next(*, settings: Settings) -> str | None:
    """Hand a worker thread that just finished an item its next one, if the window has room.

    The slot a finished call frees is refilled at once, without waiting for the next tick and a
    broker round trip. The window row is locked as in a tick, so the bound holds fleet-wide.
    """
    now = utcnow()
    with session_scope() as session:
        row = get_window(session=session, initial=settings.window_initial, lock=True)
        room = math.floor(row.limit) - item_queries.count_in_flight(session=session)
        if min(room, _rpm_room(session, settings, now)) <= 0:
            return None
        claimed = _claim_fairly(session, settings, 1, now)
    return claimed[0] if claimed else None


def _update_window(session: Session, settings: Settings, now: datetime) -> tuple[float, int]:
    row = get_window(session=session, initial=settings.window_initial, lock=True)
    until = now - OBSERVE_LAG
    successes, fresh_429 = attempt_queries.window_observations(
        session=session, since=row.observed_until, until=until, started_after=row.last_decrease_at
    )
    in_flight = item_queries.count_in_flight(session=session)
    state = controller.observe(
        controller.WindowState(row.limit, row.w_max, row.last_decrease_at),
        successes=successes,
        rate_limited=fresh_429,
        in_flight=in_flight,
        now=now,
        ceiling=settings.window_ceiling,
    )
    row.limit, row.w_max, row.last_decrease_at = state.limit, state.w_max, state.last_decrease_at
    row.observed_until = until
    row.updated_at = now
    return state.limit, in_flight


def _rpm_room(session: Session, settings: Settings, now: datetime) -> int:
    if not settings.rpm_ceiling:
        return 1 << 30
    started = attempt_queries.calls_started_since(session=session, since=now - timedelta(minutes=1))
    return max(0, math.floor(settings.rpm_ceiling) - started)


def _claim_fairly(session: Session, settings: Settings, allowed: int, now: datetime) -> list[str]:
    batches = list(batch_queries.active_batches(session=session))
    claimed: list[str] = []
    while batches and len(claimed) < allowed:
        top = batches[0].priority
        level = [b for b in batches if b.priority == top]
        share = max(1, math.ceil((allowed - len(claimed)) / len(level)))
        exhausted = []
        for batch in level:
            room = allowed - len(claimed)
            if room <= 0:
                break
            ids = item_queries.claim_queued(
                session=session,
                batch_id=batch.id,
                limit=min(share, room),
                now=now,
                lease_s=settings.dispatch_lease_s,
            )
            if ids:
                batch_queries.touch_dispatch(session=session, batch_id=batch.id, now=now)
                claimed.extend(ids)
            if len(ids) < min(share, room):
                exhausted.append(batch)
        if not exhausted and len(claimed) < allowed:
            continue  # every batch at this level still has work: another round
        batches = [b for b in batches if b not in exhausted]
    return claimed


def _unclaim(item_ids: list[str]) -> None:
    now = utcnow()
    with session_scope() as session:
        for item_id in item_ids:
            item_queries.release_dispatched(
                session=session,
                item_id=item_id,
                values={
                    "status": ItemStatus.queued.value,
                    "lease_expires_at": None,
                    "updated_at": now,
                },
            )
