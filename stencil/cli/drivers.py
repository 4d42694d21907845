"""Who drives a running batch: a `stencil run` on this machine, a live scheduler, or nothing.

A batch whose status is ``running`` is only dispatched while a scheduler runs: the one inside a
`stencil run` (which holds the batch's run lock, ``stencil/run_lock.py``) or a `stencil scheduler`
process (which beats in the ``heartbeats`` table). After a `stencil run` is killed, its batch is
running in name only; `resume` and `retry` say so and name the command that continues it.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from enum import StrEnum

from stencil import run_lock
from stencil.settings import Settings


class Driver(StrEnum):
    """What dispatches a running batch."""

    run = "run"  # a `stencil run` on this machine holds it
    scheduler = "scheduler"  # a scheduler process beat recently
    nothing = "nothing"  # nothing: it waits until `stencil run b_...` or a scheduler starts


def driver_of(batch_id: str, settings: Settings) -> Driver:
    if run_lock.is_held(settings, batch_id):
        return Driver.run
    return Driver.scheduler if live_schedulers() else Driver.nothing


def live_schedulers() -> int:
    """Schedulers that beat recently (on this host: whose process still exists)."""
    from models.db import session_scope
    from models.liveness import ALIVE_WITHIN_S
    from models.queries import heartbeats as heartbeat_queries

    host = socket.gethostname()[:120]
    with session_scope() as session:
        now = heartbeat_queries.database_now(session=session)
        rows = heartbeat_queries.list_heartbeats(session=session)
        recent = [
            (row.host, row.pid)
            for row in rows
            if row.role == "scheduler" and now - row.beat_at <= timedelta(seconds=ALIVE_WITHIN_S)
        ]
    return sum(1 for row_host, pid in recent if row_host != host or _exists(pid))


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def continue_hint(batch_id: str, settings: Settings, *, changed: bool) -> str | None:
    """What to tell the user about a batch a command left running; None when all is as it says."""
    driver = driver_of(batch_id, settings)
    if driver is Driver.nothing:
        state = "running again, but" if changed else "marked running, but"
        return (
            f"{state} no `stencil run` or scheduler is running it; "
            f"continue with: stencil run {batch_id}"
        )
    if changed:
        return None
    if driver is Driver.run:
        return "already running under a `stencil run`"
    return "already running; a scheduler dispatches it"
