"""The adaptive concurrency window: how many calls the whole fleet may have in flight.

Vertex's image models have a dynamic shared quota, so the limit is learned, not configured.
The controller remembers where 429s began (``w_max``), backs off by a gentle factor (at most once
per round trip: only 429s from calls started after the last decrease count; deeper when many calls
in flight were refused), climbs back quickly to just under ``w_max`` and then probes above it by
a small share of it per round trip, faster the further it gets (capacity may have grown), as TCP
CUBIC does around its plateau. Before the first 429 it grows about 1.5x per round trip (Google
advises ramping up gradually).
The window counts items in flight, which includes a worker's time around each call (opening the
attempt, storing the image): probing finds the item count at which calls reach the capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

BETA = 0.9  # multiplicative decrease on 429
APPROACH = 0.5  # share of the gap to w_max closed per round trip
PROBE_SHARE = 0.04  # at w_max, probe by this share of it per round trip (16 -> ~0.6 call)
PROBE_MIN = 0.25  # ... but at least this many calls per round trip
CONVEX = 0.25  # above w_max the probe grows by this share of the distance per round trip
SLOW_START = 0.5  # before the first 429: grow by this share of the successes (1.5x per trip)
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
        # A deeper cut only when many of the calls in flight were refused (capacity fell).
        factor = min(BETA, max(0.5, 1.0 - rate_limited / base))
        # w_max: where 429s began; after a big overshoot, what was admitted rather than tried
        w_max = base if factor >= BETA else max(FLOOR, base - rate_limited)
        return WindowState(limit=max(FLOOR, base * factor), w_max=w_max, last_decrease_at=now)
    if successes <= 0 or in_flight < state.limit - 2:
        return state  # grow only while the window is what limits the fleet
    limit = state.limit
    per_rtt = successes / max(limit, FLOOR)  # fraction of a round trip these successes represent
    if state.w_max <= 0:
        limit += successes * SLOW_START  # ramp up gradually, as Google advises
    elif limit < state.w_max * 0.98:
        limit += (state.w_max - limit) * min(1.0, APPROACH * per_rtt * 2)
    else:  # probe gently near w_max, faster the further above it (convex, as CUBIC)
        probe = max(PROBE_MIN, PROBE_SHARE * state.w_max, CONVEX * (limit - state.w_max))
        limit += per_rtt * probe
    return replace(state, limit=min(ceiling, max(FLOOR, limit)))
