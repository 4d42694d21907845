"""The embedded main job: a scheduler thread and a real Celery worker process, started and stopped
around one batch (`stencil run`).

The worker runs in its own session (a terminal's Ctrl-C or hang-up reaches `stencil run` only,
which then stops it warm) and is told the run's pid, so it shuts itself down warm if the run dies
without stopping it (see ``worker/parent_watch.py``). Its output goes to a log file in the data
dir unless the run is verbose.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from stencil.settings import Settings

PARENT_PID_ENV = "STENCIL_PARENT_PID"  # read by worker/parent_watch.py
STOP_MARGIN_S = 15.0  # on top of the provider timeout: a warm stop lets the slowest call finish


def worker_command(*, concurrency: int, loglevel: str = "WARNING") -> list[str]:
    return [
        sys.executable,
        "-m",
        "stencil",
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        loglevel,
    ]


def start_worker(
    *,
    concurrency: int,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    loglevel: str = "WARNING",
) -> subprocess.Popen[bytes]:
    """A `stencil worker` child in its own session, tied to this process's life.

    With ``log_path`` its output is appended there; without, it goes to our stderr (stdout
    belongs to the parent's results and --json).
    """
    out: IO[bytes] | Any = sys.stderr
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")
    try:
        return subprocess.Popen(
            worker_command(concurrency=concurrency, loglevel=loglevel),
            env={**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if log_path is not None else None,
            start_new_session=True,
        )
    finally:
        if log_path is not None:
            out.close()


@contextmanager
def worker_process(
    *, concurrency: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A `stencil worker` child, stopped warm (then killed) on exit."""
    process = start_worker(concurrency=concurrency, env=env)
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


class SchedulerThread:
    """The dispatch loop and the sweeper on a daemon thread, stoppable at any time."""

    def __init__(self, settings: Settings) -> None:
        from scheduler.loop import run_scheduler
        from worker.app import send_items

        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=run_scheduler,
            kwargs={"settings": settings, "send": send_items, "stop": self.stop_event},
            name="scheduler",
            daemon=True,
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=timeout_s)


@contextmanager
def scheduler_thread(settings: Settings) -> Iterator[threading.Thread]:
    scheduler = SchedulerThread(settings)
    scheduler.start()
    try:
        yield scheduler.thread
    finally:
        scheduler.stop()


class LocalRun:
    """A scheduler thread and a worker process for `stencil run`: started together; stopped
    scheduler first (nothing more is dispatched), then the worker warm (calls in flight finish
    and are recorded; no new item starts)."""

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int,
        log_path: Path | None,
        loglevel: str = "WARNING",
    ) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.log_path = log_path
        self.loglevel = loglevel
        self.scheduler = SchedulerThread(settings)
        self.worker: subprocess.Popen[bytes] | None = None
        self.left_behind: subprocess.Popen[bytes] | None = None

    @property
    def stop_grace_s(self) -> float:
        return self.settings.request_timeout_s + STOP_MARGIN_S

    def start(self) -> None:
        self.worker = start_worker(
            concurrency=self.concurrency, log_path=self.log_path, loglevel=self.loglevel
        )
        self.scheduler.start()

    def worker_alive(self) -> bool:
        return self.worker is not None and self.worker.poll() is None

    def worker_exit_code(self) -> int | None:
        return None if self.worker is None else self.worker.poll()

    def stop_scheduler(self) -> None:
        self.scheduler.stop()

    def ask_worker_to_stop(self) -> None:
        """SIGTERM the worker's group: Celery's warm shutdown."""
        if self.worker is not None and self.worker.poll() is None:
            try:
                os.killpg(self.worker.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait_worker(self, timeout_s: float | None = None) -> bool:
        """Wait for the worker to exit; True when it has."""
        if self.worker is None:
            return True
        try:
            self.worker.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def leave_worker(self) -> None:
        """Stop waiting for a worker already shutting down warm: it finishes its calls and exits
        by itself (it watches this process)."""
        self.left_behind, self.worker = self.worker, None

    def stop(self) -> None:
        """Stop both: the worker gets ``stop_grace_s`` to finish its calls, then is killed."""
        self.stop_scheduler()
        if self.worker is not None:
            stop_group(self.worker, grace_s=self.stop_grace_s)
