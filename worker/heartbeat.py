"""The worker's heartbeat: beats from a thread between Celery's ready and shutdown signals.

Imported by `stencil worker` before Celery starts; ``stencil doctor`` counts the rows.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from models.liveness import Liveness

_current: dict[str, Liveness] = {}


@signals.worker_ready.connect  # type: ignore[untyped-decorator]
def _start(**_: Any) -> None:
    liveness = Liveness("worker")
    _current["worker"] = liveness
    liveness.start_thread()


@signals.worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stop(**_: Any) -> None:
    liveness = _current.pop("worker", None)
    if liveness is not None:
        liveness.stop()
