from __future__ import annotations

from collections.abc import Iterator

import pytest

from stencil.emulator import EmulatorHandle, start_emulator


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """A Vertex emulator on loopback with no latency and no faults (tests turn knobs)."""
    with start_emulator(seed=7) as handle:
        yield handle
