"""The scheduler process: dispatch ticks and, every second or so, a sweep.

The two are independent: a sweep that fails (whatever the reason) is logged and dispatch still
runs for every batch; a dispatch that fails (the database or broker away) is waited out.
"""

from __future__ import annotations

import logging
import threading
import time

from models.liveness import Liveness
from scheduler.dispatch import Sender, dispatch_tick
from scheduler.sweeper import sweep
from scheduler.webhooks import start_webhook_sender
from stencil.settings import Settings
from stencil.storage import open_storage
from worker.checks.runner import start_check_runner

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 1.0
RETRY_WAIT_S = 1.0


def run_scheduler(*, settings: Settings, send: Sender, stop: threading.Event) -> None:
    """Dispatch and sweep until ``stop`` is set; database or broker outages are waited out."""
    storage = open_storage(settings)
    last_sweep = 0.0
    liveness = Liveness("scheduler")  # a heartbeat row for `stencil doctor`
    start_webhook_sender(settings, stop)  # its own thread: a slow receiver never delays dispatch
    start_check_runner(settings, stop)  # its own thread: checks of stored images (issue 16)
    while not stop.is_set():
        started = time.monotonic()
        liveness.beat_if_due(started)
        if started - last_sweep >= SWEEP_EVERY_S:
            last_sweep = started
            try:
                sweep(settings=settings, storage=storage)
            except Exception as exc:
                log.warning(
                    "sweep failed (dispatch goes on): %s", _first_line(exc), exc_info=_debug()
                )
        try:
            dispatch_tick(settings=settings, send=send)
        except Exception as exc:
            log.warning("dispatch tick failed; retrying: %s", _first_line(exc), exc_info=_debug())
            stop.wait(RETRY_WAIT_S)
        stop.wait(max(0.0, settings.tick_s - (time.monotonic() - started)))
    liveness.stop()


def _first_line(exc: Exception) -> str:
    """The exception's first line (database errors go on with the whole statement)."""
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"


def _debug() -> bool:
    return log.isEnabledFor(logging.DEBUG)
