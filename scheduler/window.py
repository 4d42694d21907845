"""The adaptive concurrency window: how many calls the whole fleet may have in flight.

Vertex's image models have a dynamic shared quota, so the limit is learned, not configured.
The controller remembers where 429s began (``w_max``), backs off by a gentle factor (at most once
per round trip: only 429s from calls started after the last decrease count), climbs back quickly
to just under ``w_max`` and then probes above it slowly, as TCP CUBIC does. Before the first 429
it grows by half the successes (about 1.5x per round trip).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

BETA = 0.85  # multiplicative decrease on 429
APPROACH = 0.5  # share of the gap to w_max closed per round trip
PROBE = 0.15  # growth per round trip once at or above w_max
FLOOR = 1.0


@dataclass(frozen=True)
class WindowState:
    limit: float
    w_max: float
    last_decrease_at: datetime | None


def observe(
    state: WindowState,
    *,
    successes: int,
    rate_limited: int,
    in_flight: int,
    now: datetime,
    ceiling: float,
) -> WindowState:
    """The next window after some calls ended: ``rate_limited`` counts only fresh 429s."""
    if rate_limited > 0:
        base = min(state.limit, max(float(in_flight), FLOOR))
        share = rate_limited / max(1, rate_limited + successes)
        factor = min(BETA, max(0.5, 1.0 - share))
        return WindowState(
            limit=max(FLOOR, base * factor),
            w_max=base,
            last_decrease_at=now,
        )
    if successes <= 0 or in_flight < state.limit - 2:
        return state  # grow only while the window is what limits the fleet
    limit = state.limit
    per_rtt = successes / max(limit, FLOOR)  # fraction of a round trip these successes represent
    if state.w_max <= 0:
        limit += successes * 0.5
    elif limit < state.w_max * 0.98:
        limit += (state.w_max - limit) * min(1.0, APPROACH * per_rtt * 2)
    else:
        limit += PROBE * per_rtt
    return replace(state, limit=min(ceiling, max(FLOOR, limit)))
