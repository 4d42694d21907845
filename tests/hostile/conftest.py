"""The hostile suite: each test plays a careless or hostile user and shows the money or the data.

Fixtures shared by several hostile tests live here; the rest beside the tests that use them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stencil.emulator import EmulatorHandle, start_emulator


@pytest.fixture
def emulator() -> Iterator[EmulatorHandle]:
    """A Vertex emulator on loopback with no latency and no faults (tests turn knobs)."""
    with start_emulator(seed=11) as handle:
        yield handle
