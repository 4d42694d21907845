"""``python -m bench [--quick] [--only capacity,moving,overhead,record]``: run and print figures.

Starts Postgres, Redis, an S3 endpoint (moto), the Vertex emulator and, per run, a real Stencil
fleet (`stencil scheduler` + N `stencil worker` processes) on loopback. Prints one table per
scenario and the machine, writes ``bench/results/latest.json`` and the moving-capacity plot.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.capacity import Load, Plan, scenario
from bench.measure import Run
from bench.overhead import overhead
from bench.record_scale import record_scale
from bench.report import RESULTS, machine, plot, table, write_json
from bench.stack import ROOT, Stack

SCENARIOS = ("capacity", "moving", "overhead", "record")
DOCS_PLOT = ROOT / "docs" / "benchmarks" / "moving-capacity.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer items (under two minutes)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=16, help="threads per worker")
    parser.add_argument("--docs-plot", action="store_true", help=f"also write {DOCS_PLOT}")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack on the way out
    load = Load()
    if args.quick:
        steady = Plan(n=240, baseline_n=100, workers=args.workers, concurrency=args.concurrency,
                      baselines=True)  # fmt: skip
        moving = Plan(n=240, baseline_n=100, workers=args.workers, concurrency=args.concurrency,
                      baselines=False)  # fmt: skip
        overhead_n, sizes, polls = 400, [1_000, 100_000], 3
    else:
        steady = Plan(n=1000, baseline_n=1000, workers=args.workers, concurrency=args.concurrency,
                      baselines=True)  # fmt: skip
        moving = steady
        overhead_n, sizes, polls = 3000, [1_000, 10_000, 100_000], 7
    started = time.monotonic()
    info = machine()
    out: dict[str, Any] = {
        "quick": args.quick,
        "machine": info,
        "utilization": None,
        "share_429": None,
        "moving_utilization": None,
        "best_baseline_ratio": None,
        "cpu_ms_per_image": None,
        "images_per_s_overhead": None,
        "submit_100k_s": None,
        "submit_100k_peak_mb": None,
        "poll_ms": None,
        "scenarios": {},
    }
    print(table("Machine", [info]))

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    stack = Stack()
    say("starting Postgres, Redis, S3 (moto) and the emulator")
    stack.start(sample_interval_s=0.05, seed=1)
    try:
        if "capacity" in only:
            runs = scenario(stack, load, steady, moving=False, say=say)
            _capacity_figures(out, runs, load, moving=False)
        if "moving" in only:
            runs = scenario(stack, load, moving, moving=True, say=say)
            _capacity_figures(out, runs, load, moving=True)
            path = RESULTS / "moving-capacity.png"
            plot(runs, capacity=load.capacity, latency_s=load.latency_s, path=path)
            if args.docs_plot:
                plot(runs, capacity=load.capacity, latency_s=load.latency_s, path=DOCS_PLOT)
            out["scenarios"]["moving"]["plot"] = str(path.relative_to(ROOT))
        if "overhead" in only:
            say(f"overhead: {overhead_n} items, no latency, tiny images")
            figures = overhead(
                stack, n=overhead_n, workers=args.workers, concurrency=args.concurrency
            )
            out["scenarios"]["overhead"] = figures
            out["cpu_ms_per_image"] = figures["cpu_ms_per_image"]
            out["images_per_s_overhead"] = figures["images_per_s"]
            print(table("Overhead (no latency, tiny images)", [figures]))
        if "record" in only:
            say(f"record scale: submit {sizes}, then poll")
            figures = record_scale(stack, sizes=sizes, polls=polls)
            out["scenarios"]["record"] = figures
            big = next((r for r in figures["submit"] if r["rows"] == 100_000), None)
            if big:
                out["submit_100k_s"], out["submit_100k_peak_mb"] = big["submit_s"], big["peak_mb"]
            poll = figures["poll"]
            out["poll_ms"] = {k: v for k, v in poll.items() if k.endswith("_ms")}
            print(table("Record scale: stencil submit (CSV manifest, Postgres)", figures["submit"]))
            print(table("Record scale: stencil poll (median)", [poll]))
    finally:
        stack.stop()
        out["elapsed_s"] = round(time.monotonic() - started, 1)
        path = write_json(out)
        say(f"figures written to {path.relative_to(ROOT)}")
    print(table("Goals", _goals(out)))
    return 0


def _capacity_figures(out: dict[str, Any], runs: list[Run], load: Load, *, moving: bool) -> None:
    rows = [r.figures(load.capacity, load.latency_s, moving=moving) for r in runs]
    stencil, baselines = rows[0], rows[1:]
    key = "moving_utilization" if moving else "utilization"
    for row in baselines:
        row["stencil_ratio"] = round(stencil["images_per_s"] / max(1e-9, row["images_per_s"]), 2)
    name = "moving" if moving else "capacity"
    out["scenarios"][name] = {
        "capacity": load.capacity,
        "latency_s": load.latency_s,
        "jitter": load.jitter,
        "rows": rows,
        "series": {
            r.system: {"timeline": r.timeline, "window": r.window, "applied": r.applied}
            for r in runs
        },
    }
    if moving:
        out["moving_utilization"] = stencil[key]
    else:
        out["utilization"], out["share_429"] = stencil["utilization"], stencil["share_429"]
    if baselines:
        best = max(baselines, key=lambda r: r["images_per_s"])
        ratio = round(stencil["images_per_s"] / max(1e-9, best["images_per_s"]), 2)
        if not moving or out["best_baseline_ratio"] is None:
            out["best_baseline_ratio"] = ratio
        out["scenarios"][name]["best_baseline"] = best["system"]
    title = (
        f"{'Moving capacity (C halved for the middle third)' if moving else 'Capacity'}: "
        f"C={load.capacity}, latency {load.latency_s} s (jitter {load.jitter}); "
        "p50/p95 = first call -> image stored"
    )
    print(table(title, rows))


def _goals(out: dict[str, Any]) -> list[dict[str, Any]]:
    poll = out["poll_ms"] or {}
    lib = max((v for k, v in poll.items() if "lib" in k), default=None)
    checks: list[tuple[str, Any, Callable[[Any], bool]]] = [
        ("utilization >= 95%", out["utilization"], lambda v: v >= 0.95),
        ("429 share <= 3%", out["share_429"], lambda v: v <= 0.03),
        ("moving utilization >= 90%", out["moving_utilization"], lambda v: v >= 0.90),
        ("Stencil >= 1.3x best baseline", out["best_baseline_ratio"], lambda v: v >= 1.3),
        ("CPU <= 5 ms/image", out["cpu_ms_per_image"], lambda v: v <= 5),
        (">= 200 images/s (overhead)", out["images_per_s_overhead"], lambda v: v >= 200),
        ("100k submit <= 10 s", out["submit_100k_s"], lambda v: v <= 10),
        ("100k submit <= 300 MB", out["submit_100k_peak_mb"], lambda v: v <= 300),
        ("poll <= 50 ms (library)", lib, lambda v: v <= 50),
    ]
    return [
        {"goal": goal, "value": value, "met": None if value is None else bool(test(value))}
        for goal, value, test in checks
    ]


if __name__ == "__main__":
    sys.exit(main())
