"""Stopping `stencil run` stops spending, and `stencil run b_...` continues without paying twice.

Each test runs the real `stencil run` (its own scheduler thread and Celery worker process) against
the Vertex emulator slowed down so that the signal lands mid-run, then shows the money: calls stop
when the run stops, and after the continuation the emulator's bill equals the ledger with every
prompt generated exactly once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from stencil.emulator import EmulatorHandle
from tests.cli import ROOT, cli_json, run_cli
from tests.fleet import fleet_env, vertex_settings, write_manifest

pytestmark = pytest.mark.slow
ROWS = 30
STARTED_CALLS = 5  # signal once this many calls have been answered
BATCH_LINE = re.compile(r"batch (b_[0-9a-z]+)")


@dataclass
class Run:
    """A `stencil run` in its own session (a terminal's foreground group), stderr to a file."""

    process: subprocess.Popen[str]
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def batch_id(self) -> str:
        found = BATCH_LINE.search(self.stderr)
        assert found, self.stderr
        return found.group(1)

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


@pytest.fixture
def env(tmp_path: Path, emu: EmulatorHandle) -> dict[str, str]:
    emu.configure(latency_mean_s=0.3)  # slow enough that a signal lands mid-run
    return fleet_env(
        home=tmp_path / "home",
        **vertex_settings(emu.url),
        STENCIL_WINDOW_INITIAL="3",
        STENCIL_WINDOW_CEILING="3",
    )


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    rows = [{"sku": f"s{i:03d}", "prompt": f"interrupted product {i}"} for i in range(ROWS)]
    return write_manifest(tmp_path / "m", rows)


def start_run(env: dict[str, str], tmp_path: Path, *args: str) -> Run:
    stderr_path = tmp_path / f"run-{time.monotonic_ns()}.err"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "stencil", "run", *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    return Run(process, stderr_path)


def wait_for_calls(emu: EmulatorHandle, run: Run, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while emu.stats()["completions"] < count:
        assert run.process.poll() is None, run.stderr
        assert time.monotonic() < deadline, f"no progress: {emu.stats()}\n{run.stderr}"
        time.sleep(0.05)


def gone(processes: list[psutil.Process], timeout_s: float = 20) -> list[psutil.Process]:
    """The processes still alive after waiting up to ``timeout_s`` for them to exit."""
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    return alive


def assert_calls_stopped(emu: EmulatorHandle) -> int:
    calls = emu.stats()["requests"]
    time.sleep(1.5)  # a live worker or scheduler would have started more calls by now
    assert emu.stats()["requests"] == calls
    assert emu.stats()["in_flight"] == 0
    return calls


def assert_paid_once(emu: EmulatorHandle, view: dict[str, Any]) -> None:
    stats = emu.stats()
    assert round(view["cost_usd"] * 1_000_000) == stats["bill_micros"] > 0
    assert len(stats["per_prompt"]) == ROWS
    assert set(stats["per_prompt"].values()) == {1}, stats["per_prompt"]


def continue_run(env: dict[str, str], emu: EmulatorHandle, batch_id: str) -> None:
    result = run_cli("run", batch_id, "--json", env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    view = json.loads(result.stdout)
    assert view["request_id"] == batch_id
    assert view["status"] == "done" and view["counts"] == {"succeeded": ROWS}
    assert_paid_once(emu, view)


@pytest.mark.parametrize(
    ("sig", "to_group"),
    [
        (signal.SIGINT, True),  # Ctrl-C: the terminal signals the foreground group
        (signal.SIGTERM, False),  # kill, timeout, a process manager: the run's pid only
        (signal.SIGHUP, True),  # the terminal closed
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_signal_pauses_the_batch_stops_the_worker_and_run_continues_it(
    env: dict[str, str],
    emu: EmulatorHandle,
    manifest: Path,
    tmp_path: Path,
    sig: signal.Signals,
    to_group: bool,
) -> None:
    run = start_run(env, tmp_path, str(manifest))
    wait_for_calls(emu, run, STARTED_CALLS)
    workers = run.workers()
    assert workers, "the run has no worker process"
    if to_group:
        os.killpg(run.process.pid, sig)
    else:
        os.kill(run.process.pid, sig)
    assert run.process.wait(timeout=60) == 128 + sig
    batch_id = run.batch_id()
    assert f"continue with: stencil run {batch_id}" in run.stderr
    assert re.search(
        rf"{sig.name}: stopped; batch {batch_id} is paused at \d+ of {ROWS} done", run.stderr
    )
    assert gone(workers) == []

    view = cli_json("poll", batch_id, env=env)
    print("AFTER STOP", view["counts"], flush=True)
    import glob

    print(glob.glob(env["STENCIL_DATA_DIR"] + "/broker/in/*"))
    assert view["status"] == "paused"
    assert 0 < view["counts"].get("succeeded", 0) < ROWS
    calls = assert_calls_stopped(emu)
    assert calls < ROWS
    # calls in flight at the signal finished and were recorded: the ledger is the bill so far
    assert round(view["cost_usd"] * 1_000_000) == emu.stats()["bill_micros"]

    continue_run(env, emu, batch_id)


def test_sigkill_of_run_leaves_no_worker_spending(
    env: dict[str, str], emu: EmulatorHandle, manifest: Path, tmp_path: Path
) -> None:
    run = start_run(env, tmp_path, str(manifest))
    wait_for_calls(emu, run, STARTED_CALLS)
    batch_id = run.batch_id()
    emu.configure(latency_mean_s=3.0)  # the batch must not finish while we look
    # while the run holds the batch, a second run of it is refused and resume says who runs it
    second = run_cli("run", batch_id, env=env, timeout=60)
    assert second.returncode == 1
    assert "already being run" in second.stderr and f"pid {run.process.pid}" in second.stderr
    assert "already running under a `stencil run`" in run_cli("resume", batch_id, env=env).stdout

    workers = run.workers()
    assert workers
    os.kill(run.process.pid, signal.SIGKILL)
    run.process.wait(timeout=30)
    assert gone(workers) == []  # the worker noticed its parent was gone and shut down warm
    calls = assert_calls_stopped(emu)
    assert calls < ROWS

    # nothing runs the batch now: resume says so instead of "running"
    resumed = run_cli("resume", batch_id, env=env)
    assert resumed.returncode == 0
    assert f"continue with: stencil run {batch_id}" in resumed.stdout
    assert "batch is running" not in resumed.stdout

    continue_run(env, emu, batch_id)


def test_a_second_interrupt_stops_waiting_and_the_paid_calls_are_still_recorded(
    env: dict[str, str], emu: EmulatorHandle, manifest: Path, tmp_path: Path
) -> None:
    run = start_run(env, tmp_path, str(manifest))
    wait_for_calls(emu, run, STARTED_CALLS)
    emu.configure(latency_mean_s=3.0)  # calls that start now outlive the run
    slow_from = emu.stats()["requests"]
    deadline = time.monotonic() + 30
    while emu.stats()["requests"] == slow_from:
        assert time.monotonic() < deadline, emu.stats()
        time.sleep(0.02)
    workers = run.workers()
    os.killpg(run.process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(run.process.pid, signal.SIGINT)  # the impatient user: stop waiting
    assert run.process.wait(timeout=60) == 130
    assert "the worker is finishing" in run.stderr
    assert gone(workers) == []  # it finished its calls and left by itself
    assert_calls_stopped(emu)
    view = cli_json("poll", run.batch_id(), env=env)
    assert view["status"] == "paused" and "running" not in view["counts"]
    stats = emu.stats()
    assert round(view["cost_usd"] * 1_000_000) == stats["bill_micros"]  # every paid call kept
    assert view["counts"]["succeeded"] == stats["requests"]
