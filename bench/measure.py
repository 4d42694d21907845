"""What one run measured, and the figures derived from it (same for Stencil and the baselines)."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stencil.emulator import EmulatorClient


@dataclass
class Schedule:
    """The emulator's capacity over a run: ``(seconds from start, capacity)`` steps."""

    capacity: int
    steps: list[tuple[float, int]] = field(default_factory=list)  # planned changes

    def capacity_at(self, t: float, applied: list[tuple[float, int]]) -> int:
        current = self.capacity
        for at, cap in applied:
            if at <= t:
                current = cap
        return current

    def integral(self, start: float, end: float, applied: list[tuple[float, int]]) -> float:
        """∫ C(t) dt over [start, end] (times from the run's start)."""
        points = sorted({start, end, *(at for at, _ in applied if start < at < end)})
        return sum(self.capacity_at(a, applied) * (b - a) for a, b in itertools.pairwise(points))


class CapacityDriver:
    """Turns the emulator's capacity knob at the planned times, from a thread."""

    def __init__(self, client: EmulatorClient, schedule: Schedule) -> None:
        self.client = client
        self.schedule = schedule
        self.applied: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = 0.0

    def start(self, t0: float) -> None:
        self.t0 = t0
        if not self.schedule.steps:
            return
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for at, cap in self.schedule.steps:
            if self._stop.wait(max(0.0, self.t0 + at - time.monotonic())):
                return
            self.client.configure(capacity=cap)
            self.applied.append((time.monotonic() - self.t0, cap))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.client.configure(capacity=self.schedule.capacity)


@dataclass
class Run:
    """One system's run against the emulator."""

    system: str
    items: int
    succeeded: int
    wall_s: float  # work available -> last item ended
    requests: int  # generateContent calls the emulator saw
    rate_limited: int  # of which answered 429
    latencies: list[float]  # first call -> success, per succeeded item (s)
    timeline: list[list[float]]  # (t from run start, in flight, completions)
    capacity_integral: float = 0.0  # ∫ C(t) dt over the run (call-seconds available)
    applied: list[tuple[float, int]] = field(default_factory=list)
    window: list[list[float]] = field(default_factory=list)  # (t, limit, w_max, disp, running)
    cpu_s: float | None = None  # CPU of the system's own processes during the run
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.succeeded / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def share_429(self) -> float:
        return self.rate_limited / self.requests if self.requests else 0.0

    @property
    def calls_per_item(self) -> float:
        return self.requests / self.items if self.items else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q) - 1]

    def utilization(self, capacity: int, latency_s: float) -> float:
        return self.images_per_s / (capacity / latency_s)

    def moving_utilization(self, latency_s: float) -> float:
        available = self.capacity_integral / latency_s
        return self.succeeded / available if available > 0 else 0.0

    def figures(self, capacity: int, latency_s: float, *, moving: bool) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "system": self.system,
            "items": self.items,
            "succeeded": self.succeeded,
            "wall_s": round(self.wall_s, 2),
            "images_per_s": round(self.images_per_s, 2),
            "utilization": round(self.utilization(capacity, latency_s), 4),
            "share_429": round(self.share_429, 4),
            "p50_s": _round(self.percentile(50)),
            "p95_s": _round(self.percentile(95)),
            "calls_per_item": round(self.calls_per_item, 3),
        }
        if moving:
            figures["moving_utilization"] = round(self.moving_utilization(latency_s), 4)
        if self.cpu_s is not None:
            figures["cpu_ms_per_image"] = round(1000 * self.cpu_s / max(1, self.succeeded), 2)
        figures.update(self.extra)
        return figures


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def emulator_counts(stats: dict[str, Any]) -> tuple[int, int]:
    """(generateContent requests, of which 429)."""
    return int(stats["requests"]), int(stats["codes"].get("429", 0))


def shift_timeline(stats: dict[str, Any], offset: float) -> list[list[float]]:
    """The emulator's timeline, with times moved to the run's clock."""
    return [[t - offset, n, c] for t, n, c in stats["timeline"]]


Waiter = Callable[[], bool]
