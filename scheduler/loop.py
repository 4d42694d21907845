"""The scheduler process: dispatch ticks and, every second or so, a sweep."""

from __future__ import annotations

import logging
import threading
import time

from scheduler.dispatch import Sender, dispatch_tick
from scheduler.sweeper import sweep
from stencil.settings import Settings
from stencil.storage import open_storage

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 1.0


def run_scheduler(*, settings: Settings, send: Sender, stop: threading.Event) -> None:
    """Dispatch and sweep until ``stop`` is set; database or broker outages are waited out."""
    storage = open_storage(settings)
    last_sweep = 0.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            if started - last_sweep >= SWEEP_EVERY_S:
                sweep(settings=settings, storage=storage)
                last_sweep = started
            dispatch_tick(settings=settings, send=send)
        except Exception:
            log.warning("scheduler tick failed; retrying", exc_info=log.isEnabledFor(logging.DEBUG))
            stop.wait(1.0)
        stop.wait(max(0.0, settings.tick_s - (time.monotonic() - started)))
