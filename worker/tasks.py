"""The Celery task: run one item by id (all state lives in the database)."""

from __future__ import annotations

import threading

from stencil.settings import get_settings
from stencil.storage import open_storage
from worker.app import TASK_NAME, app
from worker.execute import WorkerContext, run_item
from worker.leases import LeaseKeeper
from worker.refs import RefCache

_context: WorkerContext | None = None
_context_lock = threading.Lock()


def worker_context() -> WorkerContext:
    """This process's context, built on first use."""
    global _context
    with _context_lock:
        if _context is None:
            settings = get_settings()
            _context = WorkerContext(
                settings=settings,
                storage=open_storage(settings),
                providers={},
                refs=RefCache(),
                leases=LeaseKeeper(settings.lease_s),
            )
        return _context


@app.task(name=TASK_NAME, ignore_result=True)  # type: ignore[untyped-decorator]
def run_item_task(item_id: str) -> str:
    return run_item(item_id, worker_context()).value
