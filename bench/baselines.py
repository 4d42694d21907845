"""Run the baselines against the same emulator as Stencil: the RPM bucket and Celery."""

from __future__ import annotations

import subprocess
import sys
import time

import redis

from bench.bucket import run_bucket
from bench.measure import CapacityDriver, Run, Schedule, emulator_counts, shift_timeline
from bench.stack import ROOT, TOKEN, Stack, wait_workers
from stencil.runner import stop_group


def prompts_for(tag: str, n: int) -> list[str]:
    return [f"{tag} item {i}: a red teapot on a wooden table" for i in range(n)]


def run_bucket_baseline(stack: Stack, *, n: int, rpm: float, schedule: Schedule, label: str) -> Run:
    emulator = stack.emu.client
    emulator.reset()
    t_reset = time.monotonic()
    driver = CapacityDriver(emulator, schedule)
    t0 = time.monotonic()
    driver.start(t0)
    try:
        result = run_bucket(
            prompts_for(label, n), rpm=rpm, base_url=stack.emu.url, token=TOKEN, t0=t0
        )
        stats = emulator.stats()
    finally:
        driver.stop()
    wall = (result.ended or time.monotonic()) - t0
    requests, limited = emulator_counts(stats)
    return Run(
        system=label,
        items=n,
        succeeded=result.succeeded,
        wall_s=wall,
        requests=requests,
        rate_limited=limited,
        latencies=result.latencies,
        timeline=shift_timeline(stats, t0 - t_reset),
        capacity_integral=schedule.integral(0.0, wall, driver.applied),
        applied=list(driver.applied),
    )


def run_celery_baseline(
    stack: Stack,
    *,
    n: int,
    concurrency: int,
    schedule: Schedule,
    label: str,
    timeout_s: float = 900,
) -> Run:
    from bench import celery_baseline

    stack.redis.flush()
    env = stack.env("postgresql://unused")
    env.update(BENCH_BROKER_URL=stack.redis.url, BENCH_BASE_URL=stack.emu.url, BENCH_TOKEN=TOKEN)
    log = (stack.dir / f"{label}.log").open("ab")
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "bench.celery_baseline", "worker",
            "--pool=threads", f"--concurrency={concurrency}", "-Q", celery_baseline.QUEUE,
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    store = redis.Redis.from_url(stack.redis.url)
    emulator = stack.emu.client
    driver = CapacityDriver(emulator, schedule)
    try:
        wait_workers(stack.redis.url, 1)
        app = celery_baseline.app
        app.conf.broker_url = stack.redis.url
        prompts = prompts_for(label, n)
        emulator.reset()
        t_reset = time.monotonic()
        t0, t0_wall = time.monotonic(), time.time()
        driver.start(t0)
        with app.producer_or_acquire() as producer:
            for i, prompt in enumerate(prompts):
                celery_baseline.generate.apply_async(
                    args=[f"k{i}", prompt], producer=producer, queue=celery_baseline.QUEUE
                )
        deadline = time.monotonic() + timeout_s
        while int(store.hlen("bench:done")) + int(store.llen("bench:failed")) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label}: did not finish in {timeout_s:.0f} s")
            time.sleep(0.1)
        stats = emulator.stats()
        done = {_text(k): float(v) for k, v in store.hgetall("bench:done").items()}
        first = {_text(k): float(v) for k, v in store.hgetall("bench:first").items()}
    finally:
        driver.stop()
        stop_group(worker)
        store.close()
    wall = (max(done.values()) if done else time.time()) - t0_wall
    requests, limited = emulator_counts(stats)
    return Run(
        system=label,
        items=n,
        succeeded=len(done),
        wall_s=wall,
        requests=requests,
        rate_limited=limited,
        latencies=[t - first[k] for k, t in done.items() if k in first],
        timeline=shift_timeline(stats, t0 - t_reset),
        capacity_integral=schedule.integral(0.0, wall, driver.applied),
        applied=list(driver.applied),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
