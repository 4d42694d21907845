"""Baseline (b): Celery with a fixed concurrency and ``autoretry_for`` on 429, as users write it.

Run a worker with ``celery -A bench.celery_baseline worker --pool=threads --concurrency=K``.
Each task records its first start and its end in Redis so the bench can measure item latency.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery, Task

from bench.sdk import CONFIG, MODEL, has_image, is_rate_limit, make_client

QUEUE = "bench-baseline"
app = Celery("bench_baseline", broker=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1"))
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
_client: Any = None
_redis: Any = None


class RateLimited(Exception):
    """The provider answered 429."""


def _clients() -> tuple[Any, Any]:
    global _client, _redis
    if _client is None:
        _client = make_client(os.environ["BENCH_BASE_URL"], os.environ["BENCH_TOKEN"])
        _redis = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"])
    return _client, _redis


class Recorded(Task):  # type: ignore[misc]
    def on_failure(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        _clients()[1].rpush("bench:failed", args[0])


@app.task(
    base=Recorded,
    bind=True,
    autoretry_for=(RateLimited,),
    retry_backoff=True,  # 1, 2, 4 ... s with jitter (Celery's defaults)
    retry_kwargs={"max_retries": 20},
)  # type: ignore[untyped-decorator]
def generate(self: Task, key: str, prompt: str) -> None:
    client, store = _clients()
    store.hsetnx("bench:first", key, time.time())
    try:
        response = client.models.generate_content(model=MODEL, contents=prompt, config=CONFIG)
    except Exception as exc:
        if is_rate_limit(exc):
            raise RateLimited(str(exc)) from exc
        raise
    if not has_image(response):
        raise RuntimeError("no image")
    store.hset("bench:done", key, time.time())
