"""A tiny client for a running emulator's admin endpoints (for tests and benchmarks)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from stencil.errors import StencilError


class EmulatorClient:
    """Reads counters and turns knobs of an emulator at ``url`` (loopback http only)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        if not url.startswith("http://"):
            raise ValueError("the emulator is served over plain http on loopback")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise StencilError(f"emulator {method} {path}: HTTP {exc.code}: {detail}") from exc

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_emulator/stats")
        return result

    def knobs(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_emulator/config")
        return result

    def configure(self, **knobs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_emulator/config", knobs)
        return result

    def reset(self, *, knobs: bool = False) -> None:
        """Zero the counters; with ``knobs``, also restore the knobs it started with."""
        self._call("POST", "/_emulator/reset", {"knobs": knobs})

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Poll the health endpoint until it answers (for an emulator started as a process)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._call("GET", "/_emulator/health")
                return
            except (OSError, StencilError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
