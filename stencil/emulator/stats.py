"""The emulator's counters: outcomes, concurrency, billable tokens and the bill."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

MAX_PROMPTS = 100_000  # distinct prompts counted; later new ones go to the overflow count
MAX_SAMPLES = 20_000  # timeline samples kept (oldest dropped)


class Stats:
    """Thread-safe counters of one emulator; ``snapshot`` gives a JSON-ready copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._started = time.monotonic()
            self._requests = 0
            self._completions = 0
            self._in_flight = 0
            self._max_in_flight = 0
            self._outcomes: Counter[str] = Counter()
            self._routes: Counter[str] = Counter()
            self._codes: Counter[int] = Counter()
            self._prompt_tokens = 0
            self._output_tokens = 0
            self._bill_micros = 0
            self._per_prompt: Counter[str] = Counter()
            self._prompt_overflow = 0
            self._timeline: deque[tuple[float, int, int]] = deque(maxlen=MAX_SAMPLES)
            self._last_sample = float("-inf")
            self._admitted: deque[float] = deque()

    def request(self, prompt: str | None, route: str) -> None:
        """Count one generateContent request as it arrives (route: vertex, express, gemini)."""
        with self._lock:
            self._requests += 1
            self._routes[route] += 1
            if prompt is not None:
                if prompt in self._per_prompt or len(self._per_prompt) < MAX_PROMPTS:
                    self._per_prompt[prompt] += 1
                else:
                    self._prompt_overflow += 1

    def try_admit(self, capacity: int | None, rpm: float | None) -> str | None:
        """Take a concurrency slot; the reason for refusing ("capacity" or "rpm"), else None."""
        now = time.monotonic()
        with self._lock:
            if capacity is not None and self._in_flight >= capacity:
                return "capacity"
            if rpm is not None:
                while self._admitted and now - self._admitted[0] >= 60.0:
                    self._admitted.popleft()
                if len(self._admitted) >= rpm:
                    return "rpm"
                self._admitted.append(now)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._sample(now, 0.0)
            return None

    def release(self, interval: float) -> None:
        """Give back a concurrency slot taken by :meth:`try_admit`."""
        with self._lock:
            self._in_flight -= 1
            self._sample(time.monotonic(), interval)

    def answered(self, outcome: str, code: int | None, interval: float) -> None:
        """Count one finished request by outcome and HTTP code (None: no answer sent)."""
        with self._lock:
            self._completions += 1
            self._outcomes[outcome] += 1
            if code is not None:
                self._codes[code] += 1
            self._sample(time.monotonic(), interval)

    def bill(self, prompt_tokens: int, output_tokens: int, micros: int) -> None:
        with self._lock:
            self._prompt_tokens += prompt_tokens
            self._output_tokens += output_tokens
            self._bill_micros += micros

    def _sample(self, now: float, interval: float) -> None:
        if now - self._last_sample >= interval:
            self._last_sample = now
            t = round(now - self._started, 4)
            self._timeline.append((t, self._in_flight, self._completions))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "completions": self._completions,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "outcomes": dict(self._outcomes),
                "routes": dict(self._routes),
                "codes": {str(code): n for code, n in self._codes.items()},
                "prompt_tokens": self._prompt_tokens,
                "output_tokens": self._output_tokens,
                "bill_micros": self._bill_micros,
                "per_prompt": dict(self._per_prompt),
                "prompt_overflow": self._prompt_overflow,
                "timeline": [list(sample) for sample in self._timeline],
                "uptime_s": round(time.monotonic() - self._started, 3),
            }
