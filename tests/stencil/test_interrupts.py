"""SIGINT, SIGTERM and SIGHUP are caught alike; the first one decides the exit code."""

from __future__ import annotations

import os
import signal

import pytest

from stencil.cli.interrupts import Interrupted, Interrupts


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_raises_while_raise_now_then_only_sets_the_event(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    with Interrupts(raise_now=True) as interrupts:
        with pytest.raises(Interrupted) as caught:
            os.kill(os.getpid(), sig)
        assert caught.value.signum == sig
        interrupts.raise_now = False
        os.kill(os.getpid(), signal.SIGINT)  # a second signal is noted, not raised
        assert interrupts.event.is_set()
        assert interrupts.signum == sig and interrupts.exit_code == 128 + sig
        assert interrupts.name == sig.name
    assert signal.getsignal(sig) == before
