"""The `vertex` provider end to end through the real SDK against the emulator (issue 3)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from stencil.emulator import EmulatorHandle
from tests.cli import ROOT
from tests.fleet import CANARY_TOKEN, Fleet, fleet_env, vertex_settings, write_manifest

pytestmark = pytest.mark.slow
CATALOG = ROOT / "manifests" / "catalog" / "catalog.yaml"


@pytest.fixture
def fleet(tmp_path: Path, emulator: EmulatorHandle) -> Iterator[Fleet]:
    env = fleet_env(home=tmp_path / "home", **vertex_settings(emulator.url))
    fleet = Fleet(env=env, log_dir=tmp_path)
    yield fleet
    fleet.stop()


def _everything_written(fleet: Fleet, tmp_path: Path) -> str:
    """Logs, the database file and every stored file, as one text to search for secrets."""
    home = Path(fleet.env["STENCIL_DATA_DIR"])
    parts = [fleet.logs()]
    db = home / "stencil.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            for table in ("batches", "items", "attempts"):
                parts.extend(repr(row) for row in conn.execute(f"SELECT * FROM {table}"))
    for path in (home / "output").rglob("*.json"):
        parts.append(path.read_text())
    return "\n".join(parts)


def test_catalog_run_costs_exactly_the_emulators_bill(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    result = fleet.cli("run", str(CATALOG), "--json", timeout=240)
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["counts"] == {"succeeded": view["total"]}
    assert view["preview"] is False
    stats = emulator.stats()
    assert stats["requests"] == view["total"]
    assert round(view["cost_usd"] * 1_000_000) == stats["bill_micros"] > 0
    assert sum(row["cost_usd"] for row in view["results"]) == pytest.approx(
        stats["bill_micros"] / 1e6
    )
    text = result.stdout + result.stderr + _everything_written(fleet, tmp_path)
    assert CANARY_TOKEN not in text


def test_blocked_and_no_image_rows_keep_their_reason(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    rows = [
        {"sku": "ok-1", "prompt": "a teapot"},
        {"sku": "unsafe", "prompt": "a teapot [[SAFETY]]"},
        {"sku": "prohibited", "prompt": "a teapot [[PROHIBITED]]"},
        {"sku": "empty", "prompt": "a teapot [[NO_IMAGE]]"},
        {"sku": "chatty", "prompt": "a teapot [[TEXT_ONLY]]"},
        {"sku": "ok-2", "prompt": "a kettle"},
    ]
    manifest = write_manifest(tmp_path / "m", rows)
    result = fleet.cli("run", str(manifest), "--json", timeout=240)
    assert result.returncode == 1  # not every item succeeded
    view = json.loads(result.stdout)
    by_key = {row["key"]: row for row in view["results"]}
    assert by_key["ok-1"]["status"] == by_key["ok-2"]["status"] == "succeeded"
    assert by_key["unsafe"]["status"] == "blocked" and "IMAGE_SAFETY" in by_key["unsafe"]["error"]
    assert (
        by_key["prohibited"]["status"] == "blocked"
        and "PROHIBITED_CONTENT" in by_key["prohibited"]["error"]
    )
    assert by_key["empty"]["status"] == "no_image" and "NO_IMAGE" in by_key["empty"]["error"]
    assert by_key["chatty"]["status"] == "no_image"
    item = fleet.json("poll", by_key["unsafe"]["request_id"])
    assert item["status"] == "blocked" and item["images"] == []
    assert item["error"]["kind"] == "blocked" and "IMAGE_SAFETY" in item["error"]["message"]
    waited = fleet.cli("wait", view["request_id"])
    assert waited.returncode == 1  # wait says plainly that not every item succeeded
    assert "blocked" in waited.stdout
    results = fleet.cli("results", view["request_id"], "--format", "csv")
    table = {r["key"]: r for r in csv.DictReader(io.StringIO(results.stdout))}
    assert "NO_IMAGE" in table["empty"]["error"]
    # no-image answers are retried a bounded number of times (settings.no_image_retries = 1)
    assert emulator.stats()["per_prompt"]["a teapot [[NO_IMAGE]]"] == 2
    assert emulator.stats()["per_prompt"]["a teapot [[SAFETY]]"] == 1
    assert round(view["cost_usd"] * 1e6) == emulator.stats()["bill_micros"]


def test_thirty_percent_503_ends_with_no_failure(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(error_503_rate=0.3, latency_mean_s=0.01)
    rows = [{"sku": f"s{i}", "prompt": f"product {i}"} for i in range(200)]
    manifest = write_manifest(tmp_path / "m", rows)
    result = fleet.cli("run", str(manifest), "--json", "--concurrency", "16", timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    view = json.loads(result.stdout)
    assert view["counts"] == {"succeeded": 200}
    stats = emulator.stats()
    assert stats["codes"].get("503", 0) > 20  # the faults really happened
    assert stats["requests"] / 200 <= 1.6
    assert round(view["cost_usd"] * 1e6) == stats["bill_micros"]


def test_refused_credentials_stop_the_batch_after_few_calls(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(require_token="the-right-token")
    rows = [{"sku": f"s{i}", "prompt": f"product {i}"} for i in range(40)]
    manifest = write_manifest(tmp_path / "m", rows)
    submitted = fleet.json("submit", str(manifest))
    fleet.start_scheduler()
    fleet.start_worker()
    batch_id = submitted["request_id"]
    import time

    deadline = time.monotonic() + 60
    view = fleet.json("poll", batch_id)
    while view["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.3)
        view = fleet.json("poll", batch_id)
    assert view["status"] == "stopped", fleet.logs()
    assert "credentials" in view["stop_reason"]
    time.sleep(2)  # nothing more is dispatched
    calls = emulator.stats()["requests"]
    assert calls <= 12  # the window's first round at most, not 40
    assert fleet.json("poll", batch_id)["counts"].get("queued", 0) >= 40 - calls
    assert emulator.stats()["requests"] == calls
    text = _everything_written(fleet, tmp_path)
    assert CANARY_TOKEN not in text


def test_a_retired_model_stops_the_batch(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(retired_models=["gemini-2.5-flash-image"])
    rows = [{"sku": f"s{i}", "prompt": f"product {i}"} for i in range(30)]
    result = fleet.cli("run", str(write_manifest(tmp_path / "m", rows)), "--json", timeout=120)
    assert result.returncode == 1
    view = json.loads(result.stdout)
    assert view["status"] == "stopped" and "retired" in view["stop_reason"]
    assert emulator.stats()["requests"] <= 12  # the first window's worth, not 30
    failed = [r for r in view["results"] if r["status"] == "failed"]
    assert failed and all("404" in r["error"] for r in failed)
