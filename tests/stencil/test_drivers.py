"""Who drives a running batch: a `stencil run` (its lock), a live scheduler, or nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from models.liveness import Liveness
from stencil import run_lock
from stencil.cli.drivers import Driver, continue_hint, driver_of


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_batch_is_driven_by_its_run_or_a_live_scheduler(stencil_env: Path) -> None:
    from stencil.cli.common import ready

    settings = ready()
    assert driver_of("b_x", settings) is Driver.nothing
    assert continue_hint("b_x", settings, changed=False) == (
        "marked running, but no `stencil run` or scheduler is running it; "
        "continue with: stencil run b_x"
    )
    killed = Liveness("scheduler")  # a `stencil run` killed by SIGKILL leaves its beat behind
    killed.pid = _dead_pid()
    assert killed.beat()
    assert driver_of("b_x", settings) is Driver.nothing
    with run_lock.hold(settings, "b_x"):
        assert driver_of("b_x", settings) is Driver.run
        assert continue_hint("b_x", settings, changed=True) is None
    live = Liveness("scheduler")
    assert live.beat()
    assert driver_of("b_x", settings) is Driver.scheduler
    assert continue_hint("b_x", settings, changed=False) == (
        "already running; a scheduler dispatches it"
    )
    live.stop()
    assert driver_of("b_x", settings) is Driver.nothing
