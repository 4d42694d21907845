"""One thread per worker process renews the leases of every item this process is running."""

from __future__ import annotations

import logging
import threading
import time

from models.db import session_scope
from models.queries import items as item_queries

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews leases every third of their length while calls are in progress."""

    def __init__(self, lease_s: float) -> None:
        self._lease_s = lease_s
        self._held: dict[str, str] = {}
        self._confirmed: dict[str, float] = {}  # item id -> monotonic time the lease was set
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, item_id: str, attempt_id: str) -> None:
        """Keep renewing this item's lease (just set by the caller) until released."""
        with self._lock:
            self._held[item_id] = attempt_id
            self._confirmed[item_id] = time.monotonic()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()

    def release(self, item_id: str) -> None:
        with self._lock:
            self._held.pop(item_id, None)
            self._confirmed.pop(item_id, None)

    def surely_held(self, item_id: str) -> bool:
        """True within half a lease of taking the item: no sweeper can have taken it back yet
        (the other half covers clock skew between machines). Later, ask the database."""
        with self._lock:
            confirmed = self._confirmed.get(item_id)
        return confirmed is not None and time.monotonic() - confirmed < self._lease_s / 2

    def _run(self) -> None:
        stop = threading.Event()
        while not stop.wait(self._lease_s / 3):
            with self._lock:
                held = dict(self._held)
            if not held:
                continue
            try:
                with session_scope() as session:
                    for item_id, attempt_id in held.items():
                        item_queries.renew_lease(
                            session=session,
                            item_id=item_id,
                            attempt_id=attempt_id,
                            lease_s=self._lease_s,
                        )
            except Exception:  # the database may be restarting; the next round tries again
                log.warning("lease renewal failed; retrying", exc_info=True)
