"""A worker started by `stencil run` shuts down warm when the run dies, even by SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from worker.parent_watch import PARENT_PID_ENV, expected_parent, watch_parent

# A parent that starts a "worker" tied to it, prints the worker's pid, then waits to be killed.
# The worker's SIGTERM handler stands for Celery's warm shutdown: it leaves a mark and exits.
PARENT = """
import os, subprocess, sys
worker = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1], sys.argv[2]],
    env={**os.environ, "STENCIL_PARENT_PID": str(os.getpid())},
    start_new_session=True,
)
print(worker.pid, flush=True)
worker.wait()
"""
WORKER = """
import signal, sys, time
from pathlib import Path
from worker.parent_watch import stop_with_parent

def warm(*_):
    Path(sys.argv[1]).write_text("warm shutdown")
    sys.exit(0)

signal.signal(signal.SIGTERM, warm)
assert stop_with_parent() is not None
Path(sys.argv[1] + ".ready").write_text("")
time.sleep(120)
"""


def test_sigkill_of_the_parent_starts_the_workers_warm_shutdown(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, WORKER, str(mark)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    worker = psutil.Process(int(parent.stdout.readline()))
    try:
        deadline = time.monotonic() + 20
        while not Path(f"{mark}.ready").exists():
            assert time.monotonic() < deadline and worker.is_running()
            time.sleep(0.05)
        parent.kill()
        parent.wait()
        worker.wait(timeout=20)
    finally:
        if worker.is_running():
            worker.kill()
    assert mark.read_text() == "warm shutdown"


def test_the_watch_calls_back_once_the_parent_is_not_ours() -> None:
    gone = threading.Event()
    watch_parent(os.getppid() + 999_999, gone.set, every_s=0.01)  # not our parent: gone at once
    assert gone.wait(5)
    stay = threading.Event()
    stop = threading.Event()
    thread = watch_parent(os.getppid(), stay.set, every_s=0.01, stop=stop)
    time.sleep(0.1)
    stop.set()
    thread.join(5)
    assert not stay.is_set()


def test_only_run_ties_a_worker_to_its_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PARENT_PID_ENV, raising=False)
    assert expected_parent() is None
    monkeypatch.setenv(PARENT_PID_ENV, "1")  # init: never a real `stencil run`
    assert expected_parent() is None
    monkeypatch.setenv(PARENT_PID_ENV, "4242")
    assert expected_parent() == 4242
