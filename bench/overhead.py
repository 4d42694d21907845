"""Scenario 4: no latency, tiny images: Stencil's end-to-end rate and its own CPU per image."""

from __future__ import annotations

from typing import Any

from bench.measure import Schedule
from bench.stack import Stack
from bench.stencil_run import run_stencil


def overhead(stack: Stack, *, n: int, workers: int, concurrency: int) -> dict[str, Any]:
    stack.emu.client.configure(
        capacity=None, latency_mean_s=0.0, latency_jitter=0.0, tiny_images=True
    )
    run = run_stencil(
        stack,
        n=n,
        schedule=Schedule(0),
        workers=workers,
        concurrency=concurrency,
        tag="overhead",
    )
    cpu = run.cpu_s or 0.0
    return {
        "items": n,
        "succeeded": run.succeeded,
        "wall_s": round(run.wall_s, 2),
        "images_per_s": round(run.images_per_s, 1),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_image": round(1000 * cpu / max(1, run.succeeded), 2),
        "calls_per_item": round(run.calls_per_item, 3),
        "workers": f"{workers} x {concurrency} threads",
        "machine_cpu_busy": run.extra.get("machine_cpu_busy"),
    }
