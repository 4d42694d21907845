"""Heartbeats from a running process: a row in ``heartbeats`` refreshed every few seconds.

The scheduler beats from its loop (``beat_if_due`` each tick: a stuck loop stops beating); a
worker beats from a thread while Celery runs (``worker/heartbeat.py``). A failed beat (the
database away) is logged at debug level and tried again at the next one: a heartbeat never stops
a process. ``stencil doctor`` reads the rows.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from models.db import session_scope
from models.queries import heartbeats as heartbeat_queries

log = logging.getLogger(__name__)
BEAT_EVERY_S = 5.0
ALIVE_WITHIN_S = 30.0  # doctor: a process whose last beat is older is not counted as alive


class Liveness:
    """One process's heartbeat row (``role`` is ``worker`` or ``scheduler``)."""

    def __init__(self, role: str, *, every_s: float = BEAT_EVERY_S) -> None:
        self.role = role
        self.every_s = every_s
        self.host = socket.gethostname()[:120]
        self.pid = os.getpid()
        self.process_id = f"{role}:{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self._last = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """Write one beat now; False (and logged) when the database cannot be reached."""
        try:
            with session_scope() as session:
                heartbeat_queries.beat(
                    session=session,
                    process_id=self.process_id,
                    role=self.role,
                    host=self.host,
                    pid=self.pid,
                )
        except Exception as exc:
            log.debug("heartbeat of %s failed: %s", self.process_id, exc)
            return False
        return True

    def beat_if_due(self, now: float | None = None) -> None:
        """Beat when ``every_s`` has passed since the last try (for a loop that ticks)."""
        now = time.monotonic() if now is None else now
        if now - self._last >= self.every_s:
            self._last = now
            self.beat()

    def start_thread(self) -> None:
        """Beat from a daemon thread until ``stop``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"{self.role}-heartbeat", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        """Stop beating and remove the row (a process that stops cleanly is not 'dead')."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every_s + 5)
        try:
            with session_scope() as session:
                heartbeat_queries.remove(session=session, process_id=self.process_id)
        except Exception as exc:
            log.debug("removing heartbeat %s failed: %s", self.process_id, exc)
