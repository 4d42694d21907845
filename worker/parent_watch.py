"""A worker started by `stencil run` stops when that run ends, however it ends (even SIGKILL).

`stencil run` passes its pid in ``STENCIL_PARENT_PID``. The worker asks Linux to send it SIGTERM
when its parent dies (``PR_SET_PDEATHSIG``) and also watches its parent pid from a daemon
thread (other systems, and the moment before the request took effect). Either way the worker
begins a warm shutdown: calls in flight finish and are recorded, no new item is started.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

PARENT_PID_ENV = "STENCIL_PARENT_PID"
WATCH_EVERY_S = 0.5
PR_SET_PDEATHSIG = 1

log = logging.getLogger(__name__)


def expected_parent() -> int | None:
    """The parent pid `stencil run` passed down, or None for a worker started on its own."""
    text = os.environ.get(PARENT_PID_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 1 else None


def ask_kernel_for_sigterm_on_parent_death() -> bool:
    """Linux only: SIGTERM this process when its parent dies. True when the request took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(
    parent: int,
    on_gone: Callable[[], None],
    *,
    every_s: float = WATCH_EVERY_S,
    stop: threading.Event | None = None,
) -> threading.Thread:
    """A daemon thread that calls ``on_gone`` once, as soon as ``parent`` is no longer ours."""
    stop = stop or threading.Event()

    def _watch() -> None:
        while not stop.is_set():
            if os.getppid() != parent:
                log.info("parent process %s has gone; shutting down warm", parent)
                on_gone()
                return
            stop.wait(every_s)

    thread = threading.Thread(target=_watch, name="parent-watch", daemon=True)
    thread.start()
    return thread


def warm_shutdown_self() -> None:
    """SIGTERM to this process: Celery's warm shutdown (in-flight tasks finish, none start)."""
    os.kill(os.getpid(), signal.SIGTERM)


def stop_with_parent(on_gone: Callable[[], None] = warm_shutdown_self) -> threading.Thread | None:
    """Tie this process to the parent named in ``STENCIL_PARENT_PID`` (no-op when unset)."""
    parent = expected_parent()
    if parent is None:
        return None
    ask_kernel_for_sigterm_on_parent_death()
    return watch_parent(parent, on_gone)  # also covers a parent that died before the prctl
