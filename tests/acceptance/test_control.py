"""Issue 4: cancel, pause, resume and retry do what their help says; reuse skips paid work."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stencil.emulator import EmulatorHandle
from tests.fleet import Fleet, fleet_env, vertex_settings, write_manifest

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(tmp_path: Path, emulator: EmulatorHandle) -> Iterator[Fleet]:
    fleet = Fleet(
        env=fleet_env(home=tmp_path / "home", **vertex_settings(emulator.url)), log_dir=tmp_path
    )
    yield fleet
    fleet.stop()


def _rows(count: int, **extra: str) -> list[dict[str, str]]:
    rows = [{"sku": f"s{i:03d}", "prompt": f"catalog photo {i}"} for i in range(count)]
    for sku, prompt in extra.items():
        rows.append({"sku": sku, "prompt": prompt})
    return rows


def test_pause_resume_cancel(fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path) -> None:
    emulator.configure(latency_mean_s=0.5)
    fleet.env.update(
        STENCIL_WINDOW_INITIAL="2", STENCIL_WINDOW_CEILING="3"
    )  # slow enough to cancel
    batch_id = fleet.json("submit", str(write_manifest(tmp_path / "m", _rows(30))))["request_id"]
    paused = fleet.json("pause", batch_id)
    assert paused["status"] == "paused"
    fleet.start_scheduler()
    fleet.start_worker(concurrency=4)
    time.sleep(2.5)
    view = fleet.json("poll", batch_id)
    assert view["status"] == "paused" and view["counts"] == {"queued": 30}
    assert emulator.stats()["requests"] == 0

    assert fleet.json("resume", batch_id)["status"] == "running"
    deadline = time.monotonic() + 30
    while (
        fleet.json("poll", batch_id)["counts"].get("succeeded", 0) < 4
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    cancelled = fleet.json("cancel", batch_id)
    assert cancelled["status"] == "cancelled" and cancelled["changed"] > 0
    view = fleet.wait_done(batch_id, timeout=30)
    counts = view["counts"]
    assert set(counts) <= {"succeeded", "cancelled"} and sum(counts.values()) == 30
    assert (
        counts["cancelled"] == cancelled["changed"] or counts["cancelled"] >= cancelled["changed"]
    )
    assert counts["succeeded"] == emulator.stats()["requests"]  # in-flight calls were kept
    assert view["status"] == "cancelled"
    time.sleep(1)
    assert emulator.stats()["requests"] == counts["succeeded"]  # nothing more was called


def test_cancel_one_item(fleet: Fleet, tmp_path: Path) -> None:
    batch_id = fleet.json("submit", str(write_manifest(tmp_path / "m", _rows(3))))["request_id"]
    items = fleet.json("poll", batch_id, "--items")["items"]
    result = fleet.json("cancel", items[1]["request_id"])
    assert result["changed"] == 1
    assert fleet.json("poll", items[1]["request_id"])["status"] == "cancelled"
    assert fleet.json("poll", items[0]["request_id"])["status"] == "queued"


def test_retry_chosen_kinds(fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path) -> None:
    rows = _rows(3, bad="a poster [[BAD_REQUEST]]", unsafe="a poster [[SAFETY]]")
    result = fleet.cli("run", str(write_manifest(tmp_path / "m", rows)), "--json")
    assert result.returncode == 1
    import json

    view = json.loads(result.stdout)
    status = {r["key"]: r["status"] for r in view["results"]}
    assert status["bad"] == "failed" and status["unsafe"] == "blocked"
    assert "INVALID_ARGUMENT" in next(r["error"] for r in view["results"] if r["key"] == "bad")
    batch_id = view["request_id"]

    retried = fleet.json("retry", batch_id, "--blocked")
    assert retried["changed"] == 1
    unsafe = next(r for r in view["results"] if r["key"] == "unsafe")
    assert fleet.json("poll", unsafe["request_id"])["status"] == "queued"
    assert fleet.json("poll", batch_id)["counts"]["failed"] == 1  # --blocked left the failed one

    fleet.start_scheduler()
    fleet.start_worker(concurrency=2)
    fleet.wait_done(batch_id)
    assert emulator.stats()["per_prompt"]["a poster [[SAFETY]]"] == 2
    assert emulator.stats()["per_prompt"]["a poster [[BAD_REQUEST]]"] == 1
    assert fleet.json("poll", unsafe["request_id"])["status"] == "blocked"


def test_resubmit_with_three_changed_rows_calls_three_times(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    rows = _rows(20)
    first = fleet.cli("run", str(write_manifest(tmp_path / "m", rows)), "--json")
    assert first.returncode == 0, first.stderr
    assert emulator.stats()["requests"] == 20
    for i in (2, 7, 11):
        rows[i]["prompt"] += " in blue"
    second = fleet.cli("run", str(write_manifest(tmp_path / "m", rows)), "--json")
    assert second.returncode == 0, second.stderr
    assert emulator.stats()["requests"] == 23
    import json

    results = json.loads(second.stdout)["results"]
    assert sum(1 for r in results if r["reused_from"]) == 17
    assert sum(r["cost_usd"] for r in results if r["reused_from"]) == 0
