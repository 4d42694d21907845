"""SIGINT, SIGTERM and SIGHUP, caught alike by a long command (`stencil run`).

Ctrl-C, `kill`, `timeout` and closing the terminal all mean "stop": the command learns of it
through :attr:`Interrupts.event` and stops in order. While ``raise_now`` is set (before there is
anything to stop in order, or while waiting on something a second signal should cut short) a
signal raises :class:`Interrupted` instead. The exit code is the shell's: 128 + signal number.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A stop signal arrived while the command could simply unwind."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """Catches the stop signals for the life of a ``with`` block; restores the old handlers."""

    def __init__(self, *, raise_now: bool = True) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.raise_now = raise_now
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()
        if self.raise_now:
            raise Interrupted(signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)

    def __enter__(self) -> Interrupts:
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
