"""The window controller against a simulated provider of fixed (or moving) capacity.

The simulation runs in round trips: each round the fleet has ``floor(limit)`` calls in flight;
calls beyond the capacity are answered 429, the rest succeed. No clocks, no randomness.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from scheduler.window import FLOOR, WindowState, observe

START = datetime(2026, 1, 1, tzinfo=UTC)


def simulate(capacities: list[int], *, initial: float = 4.0, ceiling: float = 256.0) -> list[dict]:
    state = WindowState(limit=initial, w_max=0.0, last_decrease_at=None)
    rounds = []
    for n, capacity in enumerate(capacities):
        in_flight = math.floor(state.limit)
        ok = min(in_flight, capacity)
        refused = in_flight - ok
        state = observe(
            state,
            successes=ok,
            rate_limited=refused,
            in_flight=in_flight,
            now=START + timedelta(seconds=n),
            ceiling=ceiling,
        )
        rounds.append({"capacity": capacity, "calls": in_flight, "ok": ok, "refused": refused})
        rounds[-1]["limit"] = state.limit
    return rounds


def test_converges_near_capacity_with_few_refusals() -> None:
    rounds = simulate([16] * 200)
    steady = rounds[20:]
    used = sum(r["ok"] for r in steady) / sum(r["capacity"] for r in steady)
    refused = sum(r["refused"] for r in steady) / sum(r["calls"] for r in steady)
    assert used >= 0.93  # a plain halve-on-429 saw averages near 0.75
    assert refused <= 0.05


def test_slow_start_reaches_capacity_within_a_few_round_trips() -> None:
    rounds = simulate([64] * 10)
    assert any(r["calls"] >= 32 for r in rounds[:7])  # about 1.5x per round trip


def test_halved_capacity_is_followed_down_and_back_up() -> None:
    rounds = simulate([16] * 60 + [8] * 60 + [16] * 60)
    low = rounds[75:120]
    assert max(r["calls"] for r in low) <= 10
    assert sum(r["ok"] for r in low) / sum(r["capacity"] for r in low) >= 0.85
    back = rounds[150:]
    assert sum(r["ok"] for r in back) / sum(r["capacity"] for r in back) >= 0.9


def test_floor_and_ceiling_hold() -> None:
    assert min(r["limit"] for r in simulate([0] * 30)) >= FLOOR
    assert max(r["limit"] for r in simulate([1000] * 40, ceiling=20)) <= 20


def test_decrease_at_most_once_per_observation_of_fresh_429s() -> None:
    state = WindowState(limit=20.0, w_max=0.0, last_decrease_at=None)
    cut = observe(state, successes=0, rate_limited=2, in_flight=20, now=START, ceiling=256)
    assert 0.85 * 20 <= cut.limit < 20
    assert cut.w_max == 20
    assert cut.last_decrease_at == START
    # no 429s counted (stale ones are filtered by the caller): no further decrease
    same = observe(cut, successes=0, rate_limited=0, in_flight=18, now=START, ceiling=256)
    assert same.limit == cut.limit


def test_grows_only_while_the_window_limits_the_fleet() -> None:
    state = WindowState(limit=20.0, w_max=20.0, last_decrease_at=START)
    idle = observe(state, successes=5, rate_limited=0, in_flight=5, now=START, ceiling=256)
    assert idle.limit == 20.0
