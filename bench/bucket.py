"""Baseline (a): an asyncio processor with a fixed requests-per-minute bucket, as users write it.

Modelled on the OpenAI cookbook's ``api_request_parallel_processor.py``: a token bucket refilled
at a fixed RPM, one task per request, a global pause after a 429 (the cookbook's 15 s, scaled
like the latency by 1/10), failed requests go back to the queue up to ``max_attempts``. Unlike
the cookbook, the bucket holds a single token, i.e. requests are paced evenly (the cookbook's
bucket holds a whole minute's worth, whose bursts cause more 429s and would flatter Stencil).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bench.sdk import CONFIG, MODEL, has_image, is_rate_limit, make_client

PAUSE_AFTER_429_S = 1.5
MAX_ATTEMPTS = 20


@dataclass
class BucketResult:
    succeeded: int = 0
    failed: int = 0
    started: float = 0.0
    ended: float = 0.0
    latencies: list[float] = field(default_factory=list)


async def process(
    prompts: list[str], *, rpm: float, base_url: str, token: str, t0: float
) -> BucketResult:
    """Run every prompt through the SDK's async client under the bucket."""
    client = make_client(base_url, token)
    result = BucketResult(started=t0)
    queue: list[tuple[str, int, float | None]] = [(p, 0, None) for p in reversed(prompts)]
    retry: asyncio.Queue[tuple[str, int, float | None]] = asyncio.Queue()
    rate = rpm / 60.0
    size = 1.0  # even pacing: no bursts
    tokens = size
    last = time.monotonic()
    last_429 = -1e9
    active: set[asyncio.Task[None]] = set()

    async def call(prompt: str, attempt: int, first: float | None) -> None:
        nonlocal last_429
        start = time.monotonic()
        first = start if first is None else first
        try:
            response = await client.aio.models.generate_content(
                model=MODEL, contents=prompt, config=CONFIG
            )
        except Exception as exc:
            if is_rate_limit(exc):
                last_429 = time.monotonic()
            if attempt + 1 < MAX_ATTEMPTS:
                retry.put_nowait((prompt, attempt + 1, first))
            else:
                result.failed += 1
            return
        if has_image(response):
            result.succeeded += 1
            result.latencies.append(time.monotonic() - first)
            result.ended = time.monotonic()
        else:
            result.failed += 1

    while queue or not retry.empty() or active:
        now = time.monotonic()
        tokens = min(size, tokens + (now - last) * rate)
        last = now
        pending = retry.get_nowait() if not retry.empty() else (queue.pop() if queue else None)
        if pending is None:
            await asyncio.sleep(0.001)
            continue
        # the cookbook's pause: no new request until the pause after the last 429 has passed
        wait = max(0.0, last_429 + PAUSE_AFTER_429_S - now)
        if tokens < 1.0:
            wait = max(wait, (1.0 - tokens) / rate)
        if wait > 0:
            await asyncio.sleep(wait)
            now = time.monotonic()
            tokens = min(size, tokens + (now - last) * rate)
            last = now
        tokens -= 1.0
        task = asyncio.create_task(call(*pending))
        active.add(task)
        task.add_done_callback(active.discard)
        await asyncio.sleep(0)
    await client.aio.aclose()
    return result


def run_bucket(
    prompts: list[str], *, rpm: float, base_url: str, token: str, t0: float
) -> BucketResult:
    return asyncio.run(process(prompts, rpm=rpm, base_url=base_url, token=token, t0=t0))
