"""Automatic checks (issue 16): checks per second on one core for each check, on preview-sized
images; and with ``--run``, the image throughput of a real fleet with checks on versus off.

Prints figures, asserts nothing: ``python -m bench.checks [--quick] [--run [--items N]]``.
``--run`` starts the bench stack (Postgres, Redis, moto S3, the Vertex emulator as a process; see
``bench/stack.py``) and runs the same rows twice on fresh fleets (one scheduler, two workers of
concurrency 16), emulator at C = 16, 0.6 s mean latency, drawing each prompt into its image
(knob ``image_text``) so OCR has real text: once without checks, once with size, blank,
duplicates and the expected text on every row. Images/s counts the images stored (the calls);
the checks run on the scheduler's check thread and may finish later, which is reported apart.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

from worker.checks.image import blank_problem, distance, measure, size_problem
from worker.checks.text import read_text, text_problem
from worker.providers.base import ImageRequest
from worker.providers.preview import PreviewProvider


def _images(count: int) -> list[bytes]:
    provider = PreviewProvider()
    return [
        provider.generate(
            ImageRequest(
                model="gemini-2.5-flash-image",
                prompt=f"Employee badge for Person {n}, team {n % 7}",
                refs=(),
                aspect_ratio="3:4",
                image_size=None,
                labels={},
            )
        ).image
        or b""
        for n in range(count)
    ]


def _rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<34} {count / seconds:8.1f} images/s on one core ({count} in {seconds:.2f} s)")


CAPACITY = 16
LATENCY_S = 0.6
JITTER = 0.3
ALL_CHECKS = "size,blank,duplicates,text"


def _rows(path: Path, n: int, tag: str, checks: bool) -> Path:
    """A CSV manifest of ``n`` badges; with ``checks``, every check on every row."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "prompt", "aspect_ratio", "checks", "expect_text"])
        for i in range(n):
            name = f"Person {tag} {i:05d}"
            writer.writerow(
                [
                    f"{tag}-{i:05d}",
                    f"Employee badge for {name}",
                    "3:4",
                    ALL_CHECKS if checks else "none",
                    name if checks else "",
                ]
            )
    return path


def _checked(timeout_s: float) -> Any:
    """An ``after`` hook: how far the checks were when the last image was stored, then wait
    (up to ``timeout_s``) for the rest and time it."""

    def after(conn: Any, batch_id: str) -> dict[str, Any]:
        def counts() -> dict[str, int]:
            rows = conn.execute(
                "SELECT qa, count(*) FROM items WHERE batch_id = %s GROUP BY qa", (batch_id,)
            ).fetchall()
            return {str(state): int(n) for state, n in rows}

        at_end = counts()
        started = time.monotonic()
        now = at_end
        while now.get("pending", 0) and time.monotonic() - started < timeout_s:
            time.sleep(0.5)
            now = counts()
        notes = conn.execute(
            "SELECT qa_note FROM items WHERE batch_id = %s AND qa = 'failed'", (batch_id,)
        ).fetchall()
        reasons = {
            kind: sum(1 for (note,) in notes if kind in (note or ""))
            for kind in ("near-duplicate", "expected text", "blank", "aspect ratio", "size")
        }
        return {
            "checks_failed_reasons": {k: v for k, v in reasons.items() if v},
            "checks_done_at_last_image": at_end.get("passed", 0) + at_end.get("failed", 0),
            "checks_pending_at_last_image": at_end.get("pending", 0),
            "checks_finished_s_after": round(time.monotonic() - started, 1),
            "checks_final": now,
        }

    return after


def run_comparison(n: int, rounds: int = 1) -> None:
    """The same rows with checks off, then on, each on a fresh fleet, ``rounds`` times (the
    machine is shared: alternating evens out its load); prints each run and the ratio."""
    from bench.measure import Schedule
    from bench.stack import Stack
    from bench.stencil_run import run_stencil

    stack = Stack()
    stack.start(sample_interval_s=0.05, seed=1)
    try:
        stack.emu.client.configure(
            capacity=CAPACITY,
            latency_mean_s=LATENCY_S,
            latency_jitter=JITTER,
            tiny_images=False,
            image_text="{prompt}",
        )
        rate = CAPACITY / LATENCY_S
        print(f"fleet: 1 scheduler + 2 workers x 16; emulator C = {CAPACITY}, {LATENCY_S} s mean")
        results: dict[str, list[float]] = {"off": [], "on": []}
        plan = [("off", False), ("on", True)] * rounds
        for number, (label, on) in enumerate(plan):
            manifest = _rows(stack.dir / f"checks-{label}-{number}.csv", n, f"{label}{number}", on)
            run = run_stencil(
                stack,
                n=n,
                schedule=Schedule(CAPACITY),
                workers=2,
                concurrency=16,
                tag=f"checks-{label}-{number}",
                manifest=manifest,
                after=_checked(600.0) if on else None,
            )
            results[label].append(run.images_per_s)
            print(
                f"checks {label:<3} {run.succeeded}/{n} images in {run.wall_s:6.2f} s: "
                f"{run.images_per_s:6.2f} images/s, utilization "
                f"{run.images_per_s / rate:.3f}, p50 {run.percentile(50) or 0:.3f} s, "
                f"p95 {run.percentile(95) or 0:.3f} s, 429 share {run.share_429:.3f}, "
                f"machine busy {run.extra.get('machine_cpu_busy')}"
            )
            if on:
                extra = run.extra
                print(
                    f"           checks done when the last image was stored: "
                    f"{extra['checks_done_at_last_image']}/{n} "
                    f"(pending {extra['checks_pending_at_last_image']}); the rest took "
                    f"{extra['checks_finished_s_after']} s more; outcome {extra['checks_final']}, "
                    f"failures by reason {extra['checks_failed_reasons']}"
                )
        off, on_rate = sum(results["off"]), sum(results["on"])
        if off:
            print(f"image throughput with checks on / off (mean of {rounds}): {on_rate / off:.3f}")
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--run", action="store_true", help="also run a fleet, checks on vs off")
    parser.add_argument("--items", type=int, default=400, help="items per fleet run")
    parser.add_argument("--rounds", type=int, default=1, help="off/on pairs to alternate")
    args = parser.parse_args()
    images = _images(8 if args.quick else 40)
    started = time.perf_counter()
    measures = [measure(data) for data in images]
    _rate("decode + size + blank + hash", len(images), time.perf_counter() - started)
    started = time.perf_counter()
    for m in measures:
        size_problem(m, "3:4", None)
        blank_problem(m)
        for other in measures:
            distance(m.dhash, other.dhash)
    _rate("judging (duplicates: all pairs)", len(images), time.perf_counter() - started)
    ocr = images[: 4 if args.quick else 10]
    started = time.perf_counter()
    for n, data in enumerate(ocr):
        text_problem(f"Person {n}", read_text(data), 0.1)
    _rate("expected text (Tesseract OCR)", len(ocr), time.perf_counter() - started)
    if args.run:
        run_comparison(args.items, args.rounds)


if __name__ == "__main__":
    main()
