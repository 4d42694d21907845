"""Scenarios 1-3: Stencil and the baselines against a capacity-limited emulator, fixed or moving."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.baselines import run_bucket_baseline, run_celery_baseline
from bench.measure import Run, Schedule
from bench.stack import Stack
from bench.stencil_run import run_stencil


@dataclass(frozen=True)
class Load:
    """The emulator's settings for the capacity scenarios."""

    capacity: int = 16
    latency_s: float = 0.6  # 6 s scaled down by 10
    jitter: float = 0.3

    @property
    def rate(self) -> float:
        """The true capacity in calls per second."""
        return self.capacity / self.latency_s

    @property
    def rpm(self) -> float:
        return self.rate * 60


@dataclass(frozen=True)
class Plan:
    n: int
    baseline_n: int
    workers: int
    concurrency: int
    baselines: bool


def moving_schedule(load: Load, n: int) -> Schedule:
    """Capacity halved for the middle third of the run a perfect client would take."""
    duration = 6 * n / (5 * load.rate)  # thirds at C, C/2, C deliver n at full utilization
    return Schedule(
        load.capacity, [(duration / 3, load.capacity // 2), (2 * duration / 3, load.capacity)]
    )


def scenario(
    stack: Stack, load: Load, plan: Plan, *, moving: bool, say: Callable[[str], None]
) -> list[Run]:
    """Stencil, then the baselines (each configured as a user would), on one emulator."""
    stack.emu.client.configure(
        capacity=load.capacity,
        latency_mean_s=load.latency_s,
        latency_jitter=load.jitter,
        tiny_images=False,
    )
    tag = "moving" if moving else "steady"

    def schedule(n: int) -> Schedule:
        return moving_schedule(load, n) if moving else Schedule(load.capacity)

    say(f"{tag}: stencil, {plan.n} items")
    runs = [
        run_stencil(
            stack,
            n=plan.n,
            schedule=schedule(plan.n),
            workers=plan.workers,
            concurrency=plan.concurrency,
            tag=f"stencil-{tag}",
        )
    ]
    if not plan.baselines:
        return runs
    n = plan.baseline_n
    for factor, word in ((2.0, "high"), (0.5, "low")):
        rpm = load.rpm * factor
        label = f"bucket {rpm:.0f} rpm (2x too {word})"
        say(f"{tag}: {label}, {n} items")
        runs.append(run_bucket_baseline(stack, n=n, rpm=rpm, schedule=schedule(n), label=label))
    for concurrency, word in ((2 * load.capacity, "2x C"),):
        label = f"celery concurrency {concurrency} ({word})"
        say(f"{tag}: {label}, {n} items")
        runs.append(
            run_celery_baseline(
                stack, n=n, concurrency=concurrency, schedule=schedule(n), label=label
            )
        )
    return runs
