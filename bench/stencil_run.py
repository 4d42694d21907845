"""One Stencil run: fresh database, a real fleet, `stencil submit` of a CSV, wait, measure."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.measure import CapacityDriver, Run, Schedule, emulator_counts, shift_timeline
from bench.stack import Stack
from tests.cli import run_cli
from tests.fleet import Fleet

ENDED = ("succeeded", "failed", "blocked", "no_image", "cancelled", "budget_exhausted")


def write_csv(path: Path, n: int, tag: str) -> Path:
    """A CSV manifest of ``n`` rows with distinct prompts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "prompt"])
        for i in range(n):
            writer.writerow([f"{tag}-{i:06d}", f"{tag} item {i}: a red teapot on a wooden table"])
    return path


def submit(env: dict[str, str], manifest: Path, name: str) -> str:
    import json

    result = run_cli("submit", str(manifest), "--name", name, "--json", env=env, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"stencil submit failed:\n{result.stderr[-2000:]}")
    return str(json.loads(result.stdout)["request_id"])


def cpu_seconds(fleet: Fleet) -> float:
    total = 0.0
    for process in fleet.processes.values():
        try:
            times = psutil.Process(process.pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def settle(fleet: Fleet, *, quiet_s: float = 0.5, timeout_s: float = 20.0) -> None:
    """Wait until the fleet's processes are idle, so start-up (imports, warm-up) is not counted
    as per-image CPU."""
    deadline = time.monotonic() + timeout_s
    before = cpu_seconds(fleet)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = cpu_seconds(fleet)
        if now - before < 0.05 * quiet_s * max(1, len(fleet.processes)):
            return
        before = now


def pg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def ended_count(conn: psycopg.Connection[Any], batch_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM items WHERE batch_id = %s AND status = ANY(%s)",
        (batch_id, list(ENDED)),
    ).fetchone()
    return int(row[0]) if row else 0


def run_stencil(
    stack: Stack,
    *,
    n: int,
    schedule: Schedule,
    workers: int,
    concurrency: int,
    tag: str,
    extra_env: dict[str, str] | None = None,
    timeout_s: float = 900,
    manifest: Path | None = None,
    after: Callable[[psycopg.Connection[Any], str], dict[str, Any]] | None = None,
) -> Run:
    """Submit ``n`` items to a fresh fleet and measure until every item has ended; ``manifest``
    replaces the plain CSV, ``after`` measures more before the fleet stops (into ``extra``)."""
    database = stack.fresh_database()
    env = stack.env(database, **(extra_env or {}))
    manifest = manifest or write_csv(stack.dir / f"{tag}.csv", n, tag)
    more: dict[str, Any] = {}
    fleet = stack.start_fleet(env, workers=workers, concurrency=concurrency)
    emulator = stack.emu.client
    driver = CapacityDriver(emulator, schedule)
    try:
        settle(fleet)
        with psycopg.connect(pg_url(database), autocommit=True) as conn:
            cpu0 = cpu_seconds(fleet)
            machine0 = psutil.cpu_times()
            emulator.reset()
            t_reset = time.monotonic()
            batch_id = submit(env, manifest, tag)
            created = conn.execute(
                "SELECT created_at FROM batches WHERE id = %s", (batch_id,)
            ).fetchone()
            assert created is not None
            t0 = time.monotonic() - (datetime.now(UTC) - _utc(created[0])).total_seconds()
            driver.start(t0)
            sampler = WindowSampler(database, t0)
            deadline = time.monotonic() + timeout_s
            while ended_count(conn, batch_id) < n:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{tag}: the batch did not finish in {timeout_s:.0f} s")
                time.sleep(0.1)
            cpu1 = cpu_seconds(fleet)
            machine1 = psutil.cpu_times()
            window = sampler.stop()
            stats = emulator.stats()
            succeeded, wall, latencies = _outcomes(conn, batch_id, _utc(created[0]))
            if after is not None:
                more = after(conn, batch_id)
    finally:
        driver.stop()
        fleet.stop()
    requests, limited = emulator_counts(stats)
    return Run(
        system="stencil",
        items=n,
        succeeded=succeeded,
        wall_s=wall,
        requests=requests,
        rate_limited=limited,
        latencies=latencies,
        timeline=shift_timeline(stats, t0 - t_reset),
        capacity_integral=schedule.integral(0.0, wall, driver.applied),
        applied=list(driver.applied),
        cpu_s=cpu1 - cpu0,
        window=window,
        extra={"machine_cpu_busy": _busy(machine0, machine1), **more},
    )


class WindowSampler:
    """Samples the fleet window and the items in flight every 0.1 s (for the plot)."""

    def __init__(self, database: str, t0: float) -> None:
        self.samples: list[list[float]] = []
        self._url = pg_url(database)
        self._t0 = t0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._stop.wait(0.1):
                row = conn.execute(
                    "SELECT w.limit, w.w_max,"
                    " (SELECT count(*) FROM items WHERE status = 'dispatched'),"
                    " (SELECT count(*) FROM items WHERE status = 'running')"
                    " FROM fleet_window w"
                ).fetchone()
                if row:
                    t = time.monotonic() - self._t0
                    self.samples.append([round(t, 3), *(float(v) for v in row)])

    def stop(self) -> list[list[float]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def _busy(before: Any, after: Any) -> float:
    """Share of the machine's CPU time spent busy (all processes) between two samples."""
    idle = (after.idle + getattr(after, "iowait", 0)) - (before.idle + getattr(before, "iowait", 0))
    total = sum(after) - sum(before)
    return round(1 - idle / total, 3) if total > 0 else 0.0


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _outcomes(
    conn: psycopg.Connection[Any], batch_id: str, created: datetime
) -> tuple[int, float, list[float]]:
    rows = conn.execute(
        """
        SELECT i.finished_at, min(a.started_at)
        FROM items i JOIN attempts a ON a.item_id = i.id
        WHERE i.batch_id = %s AND i.status = 'succeeded'
        GROUP BY i.id, i.finished_at
        """,
        (batch_id,),
    ).fetchall()
    last = conn.execute(
        "SELECT max(finished_at) FROM items WHERE batch_id = %s", (batch_id,)
    ).fetchone()
    end = _utc(last[0]) if last and last[0] else created
    latencies = [(_utc(done) - _utc(first)).total_seconds() for done, first in rows]
    return len(rows), (end - created).total_seconds(), latencies
