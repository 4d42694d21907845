"""The embedded main job: a scheduler thread and a real Celery worker process, started and stopped
around one batch (`stencil run`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scheduler.loop import run_scheduler
from stencil.settings import Settings
from worker.app import send_items


def worker_command(*, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "stencil", "worker", "--concurrency", str(concurrency)]


@contextmanager
def worker_process(
    *, concurrency: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A `stencil worker` child in its own process group, stopped (then killed) on exit."""
    process = subprocess.Popen(
        worker_command(concurrency=concurrency),
        env={**os.environ, **(env or {})},
        stdout=sys.stderr,  # stdout belongs to the parent's results (and --json)
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[Any], *, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace_s``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def scheduler_thread(settings: Settings) -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_scheduler,
        kwargs={"settings": settings, "send": send_items, "stop": stop},
        name="scheduler",
        daemon=True,
    )
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=10)
