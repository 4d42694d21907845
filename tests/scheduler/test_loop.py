"""The scheduler loop: a failing sweep never stops dispatch, a failing dispatch is waited out."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from scheduler import loop
from stencil.settings import Settings


def _run(monkeypatch: pytest.MonkeyPatch, *, sweep_fails: bool, dispatch_fails: bool) -> list[str]:
    calls: list[str] = []
    stop = threading.Event()

    def sweep(**_: Any) -> None:
        calls.append("sweep")
        if sweep_fails:
            raise RuntimeError("integer out of range\n[SQL: UPDATE attempts SET ...]")

    def dispatch_tick(**_: Any) -> None:
        calls.append("dispatch")
        if calls.count("dispatch") >= 3:
            stop.set()
        if dispatch_fails:
            raise RuntimeError("the database went away")

    monkeypatch.setattr(loop, "sweep", sweep)
    monkeypatch.setattr(loop, "dispatch_tick", dispatch_tick)
    monkeypatch.setattr(loop, "open_storage", lambda settings: None)
    monkeypatch.setattr(loop, "SWEEP_EVERY_S", 0.0)
    monkeypatch.setattr(loop, "RETRY_WAIT_S", 0.0)
    thread = threading.Thread(
        target=loop.run_scheduler,
        kwargs={"settings": Settings(tick_s=0.01), "send": lambda ids: None, "stop": stop},
    )
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    return calls


def test_dispatch_runs_on_every_tick_although_every_sweep_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = _run(monkeypatch, sweep_fails=True, dispatch_fails=False)

    assert calls == ["sweep", "dispatch"] * 3
    assert "sweep failed (dispatch goes on): RuntimeError: integer out of range" in caplog.text
    assert "[SQL:" not in caplog.text  # one line, not the statement


def test_a_failing_dispatch_does_not_stop_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _run(monkeypatch, sweep_fails=False, dispatch_fails=True)

    assert calls == ["sweep", "dispatch"] * 3
