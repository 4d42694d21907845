"""The Celery task: run one item by id (all state lives in the database)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_init, worker_ready, worker_shutting_down

from stencil.settings import get_settings
from stencil.storage import open_storage
from worker.app import TASK_NAME, app
from worker.execute import WorkerContext, run_chain
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


@worker_init.connect  # type: ignore[untyped-decorator]
def _stop_with_parent(**_: Any) -> None:
    """A worker started by `stencil run` shuts down warm when that run ends (even by SIGKILL)."""
    from worker.parent_watch import stop_with_parent

    stop_with_parent()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _warm_up(**_: Any) -> None:
    """Build the context and the default provider's client now, not on the first item."""
    try:
        ctx = worker_context()
        provider = ctx.provider(ctx.settings.provider)
        client = getattr(provider, "client", None)
        if callable(client):
            client()
    except Exception:  # a misconfiguration is reported by the first item instead
        logging.getLogger(__name__).debug("provider warm-up failed", exc_info=True)


@worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _stop_handing_off(**_: Any) -> None:
    """On warm shutdown, running chains finish their current item and take no next one."""
    worker_context().stopping.set()


@app.task(name=TASK_NAME, ignore_result=True)  # type: ignore[untyped-decorator]
def run_item_task(item_id: str) -> list[str]:
    return [outcome.value for outcome in run_chain(item_id, worker_context())]
