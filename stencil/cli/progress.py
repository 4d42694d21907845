"""A progress bar over a batch: done/total, rate, ETA and spend, until every item has ended."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from models.db import session_scope
from stencil.storage.base import Storage
from stencil.views import poll

POLL_EVERY_S = 0.5


def follow(
    batch_id: str,
    *,
    storage: Storage,
    ttl_s: int,
    show: bool = True,
    timeout_s: float | None = None,
    alive: Callable[[], bool] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Poll a batch until it has ended (or the timeout passes, ``alive`` turns false or ``stop``
    is set); returns the last batch view."""
    started = time.monotonic()
    stop = stop or threading.Event()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.2f}/s"),
        TimeRemainingColumn(),
        TextColumn("${task.fields[spend]:.4f}"),
        TextColumn("{task.fields[state]}"),
    )
    with Progress(*columns, disable=not show, transient=False) as progress:
        task = progress.add_task(batch_id, total=None, rate=0.0, spend=0.0, state="")
        while True:
            with session_scope() as session:
                view = poll(session=session, request_id=batch_id, storage=storage, ttl_s=ttl_s)
            elapsed = max(time.monotonic() - started, 1e-6)
            progress.update(
                task,
                total=view["total"],
                completed=view["ended"],
                rate=view["ended"] / elapsed,
                spend=view["cost_usd"],
                state=view["status"],
            )
            checked = not view.get("checks_pending")  # automatic checks run after the images
            if (view["ended"] >= view["total"] and checked) or view["status"] == "stopped":
                return view
            if timeout_s is not None and elapsed > timeout_s:
                return view
            if (alive is not None and not alive()) or stop.is_set():
                return view
            if stop.wait(POLL_EVERY_S):
                return view
