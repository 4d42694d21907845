"""Issue 4: nothing lost, nothing paid twice, when workers, Redis or Postgres die mid-run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from stencil.emulator import EmulatorHandle
from tests.fleet import Fleet, migrated_fleet, write_manifest
from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(
    tmp_path: Path,
    pg_url: str,
    redis_url: str,
    s3_bucket: tuple[str, str],
    s3_env: dict[str, str],
    emulator: EmulatorHandle,
) -> Iterator[Fleet]:
    with migrated_fleet(
        tmp_path,
        pg_url=pg_url,
        redis_url=redis_url,
        s3=s3_bucket,
        s3_env=s3_env,
        emulator_url=emulator.url,
    ) as fleet:
        yield fleet


def _submit(fleet: Fleet, tmp_path: Path, count: int, **top: object) -> str:
    rows = [{"sku": f"s{i:03d}", "prompt": f"catalog photo {i}"} for i in range(count)]
    return str(fleet.json("submit", str(write_manifest(tmp_path / "m", rows, **top)))["request_id"])


def _wait_for(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _succeeded_attempts_per_item(pg_url: str) -> dict[str, int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT item_id, count(*) FROM attempts WHERE state = 'succeeded' GROUP BY item_id"
        ).fetchall()
    return {item: n for item, n in rows}


def _assert_all_succeeded_once(fleet: Fleet, pg_url: str, batch_id: str, count: int) -> None:
    view = fleet.wait_done(batch_id, timeout=120)
    assert view["counts"] == {"succeeded": count}, fleet.logs()
    per_item = _succeeded_attempts_per_item(pg_url)
    assert len(per_item) == count and set(per_item.values()) == {1}


def test_sigkill_worker_group_mid_run(
    fleet: Fleet, emulator: EmulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    emulator.configure(latency_mean_s=1.0)
    batch_id = _submit(fleet, tmp_path, 40)
    fleet.start_scheduler()
    fleet.start_worker(concurrency=8)
    _wait_for(lambda: emulator.stats()["completions"] >= 8 and emulator.stats()["in_flight"] >= 4)
    fleet.kill("worker")  # SIGKILL the whole process group
    # Calls made before the kill whose result was not recorded are the only ones that may be
    # made again (counted after the kill: one may start between a count and the kill itself).
    made_at_kill = emulator.stats()["requests"]
    cut = made_at_kill - sum(_succeeded_attempts_per_item(pg_url).values())
    assert cut >= 1
    fleet.start_worker(name="worker-2", concurrency=8)
    _assert_all_succeeded_once(fleet, pg_url, batch_id, 40)
    stats = emulator.stats()
    calls = stats["requests"]
    assert calls <= 40 + cut
    assert sum(n - 1 for n in stats["per_prompt"].values()) <= cut  # only cut calls repeat
    # The ledger keeps what may have been billed: calls cut off by the kill stay charged at their
    # reservation (outcome_unknown), so it is never below Google's bill and above it by at most
    # the calls cut by the kill.
    ledger = round(fleet.json("poll", batch_id)["cost_usd"] * 1e6)
    bill = stats["bill_micros"]
    per_call = bill / calls
    assert bill <= ledger <= bill + cut * per_call * 1.01


def test_redis_restart_without_persistence(
    fleet: Fleet, emulator: EmulatorHandle, pg_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    emulator.configure(latency_mean_s=0.3)
    batch_id = _submit(fleet, tmp_path, 40)
    fleet.start_scheduler()
    fleet.start_worker(concurrency=8)
    _wait_for(lambda: emulator.stats()["completions"] >= 8)
    redis_server.restart()  # every queued and unacknowledged message is gone
    _assert_all_succeeded_once(fleet, pg_url, batch_id, 40)
    assert emulator.stats()["requests"] <= 40 + 8


def test_postgres_restart_mid_run(
    fleet: Fleet,
    emulator: EmulatorHandle,
    pg_url: str,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    if not postgres_server.own:
        pytest.skip("restarting needs the harness's own Postgres cluster")
    emulator.configure(latency_mean_s=0.3)
    batch_id = _submit(fleet, tmp_path, 40)
    fleet.start_scheduler()
    fleet.start_worker(concurrency=8)
    _wait_for(lambda: emulator.stats()["completions"] >= 8)
    postgres_server.restart()
    _assert_all_succeeded_once(fleet, pg_url, batch_id, 40)
    view = fleet.json("poll", batch_id)
    assert round(view["cost_usd"] * 1e6) <= emulator.stats()["bill_micros"]


def test_budget_race_never_overspends(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(latency_mean_s=0.5)
    fleet.env.update(STENCIL_WINDOW_INITIAL="50", STENCIL_WINDOW_CEILING="64")
    rows = [{"sku": f"s{i:03d}", "prompt": f"catalog photo {i:03d}"} for i in range(50)]
    manifest = write_manifest(tmp_path / "m", rows)
    estimate = fleet.json("submit", str(manifest), "--dry-run")["estimated_cost_usd"] / 50
    cap = round(estimate * 25.5, 6)  # room for 25 items, not 26
    batch_id = fleet.json("submit", str(manifest), "--budget", str(cap))["request_id"]
    fleet.start_scheduler()
    fleet.start_worker(concurrency=50)
    view = fleet.wait_done(batch_id, timeout=90)
    stats = emulator.stats()
    assert stats["requests"] <= 25
    assert view["counts"].get("succeeded", 0) == stats["requests"]
    assert view["counts"].get("budget_exhausted", 0) == 50 - stats["requests"]
    assert stats["bill_micros"] <= cap * 1e6
    assert view["cost_usd"] <= cap
    exhausted = next(
        i
        for i in fleet.json("poll", batch_id, "--items")["items"]
        if i["status"] == "budget_exhausted"
    )
    assert "budget" in exhausted["error"]["message"]


def test_window_follows_a_capacity_drop(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(capacity=8, latency_mean_s=0.4)
    batch_id = _submit(fleet, tmp_path, 240)
    fleet.start_scheduler()
    fleet.start_worker(concurrency=24)
    _wait_for(lambda: emulator.stats()["completions"] >= 60, timeout=60)
    emulator.configure(capacity=4)
    low: list[float] = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        low.append(fleet.json("status")["window"])
        time.sleep(0.5)
    emulator.configure(capacity=8)
    view = fleet.wait_done(batch_id, timeout=120)
    assert view["counts"] == {"succeeded": 240}
    stats = emulator.stats()
    share_429 = stats["codes"].get("429", 0) / stats["requests"]
    assert min(low[len(low) // 2 :]) <= 6  # the window came down toward the new capacity
    assert share_429 < 0.15, stats["codes"]
    status = fleet.json("status")
    assert {"window", "in_flight", "share_429_last_minute", "images_per_minute"} <= set(status)


def test_two_schedulers_dispatch_each_item_once(
    fleet: Fleet, emulator: EmulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    emulator.configure(latency_mean_s=0.1)
    batch_id = _submit(fleet, tmp_path, 60)
    fleet.start_scheduler("scheduler-a")
    fleet.start_scheduler("scheduler-b")
    fleet.start_worker(concurrency=16)
    _assert_all_succeeded_once(fleet, pg_url, batch_id, 60)
    assert emulator.stats()["requests"] == 60  # no item was called twice
    assert max(emulator.stats()["per_prompt"].values()) == 1


def test_the_window_bounds_calls_in_flight(
    fleet: Fleet, emulator: EmulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    """Workers hand themselves the next item on completion: still never more than the window."""
    emulator.configure(latency_mean_s=0.2)
    fleet.env.update(STENCIL_WINDOW_INITIAL="4", STENCIL_WINDOW_CEILING="4")
    batch_id = _submit(fleet, tmp_path, 60)
    fleet.start_scheduler()
    fleet.start_worker("worker-a", concurrency=16)
    fleet.start_worker("worker-b", concurrency=16)
    _assert_all_succeeded_once(fleet, pg_url, batch_id, 60)
    assert emulator.stats()["max_in_flight"] <= 4
    assert emulator.stats()["requests"] == 60
