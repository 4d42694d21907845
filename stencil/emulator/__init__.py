"""A local emulator of the Vertex AI (and Gemini API) generateContent endpoint, for tests.

``start_emulator(**knobs)`` runs one in this process; ``python -m stencil.emulator --port N``
runs one as a process; :class:`EmulatorClient` turns its knobs and reads its counters.
"""

from __future__ import annotations

from stencil.emulator.client import EmulatorClient
from stencil.emulator.knobs import Knobs
from stencil.emulator.server import EmulatorHandle, EmulatorServer, make_server, start_emulator

__all__ = [
    "EmulatorClient",
    "EmulatorHandle",
    "EmulatorServer",
    "Knobs",
    "make_server",
    "start_emulator",
]
