"""Running the same manifest again, or several times at once, pays for each image once.

Every test counts what the emulator was asked for: each distinct prompt is generated at most
once, and the ledger of all batches together equals the emulator's bill.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stencil.emulator import EmulatorHandle
from tests.cli import ROOT
from tests.fleet import Fleet, fleet_env, vertex_settings, write_manifest

pytestmark = pytest.mark.slow
ROWS = [{"sku": f"sku-{n:02d}", "prompt": f"a teapot number {n}"} for n in range(18)]


def _total_cost_micros(fleet: Fleet, batch_ids: list[str]) -> int:
    return sum(round(fleet.json("poll", b)["cost_usd"] * 1_000_000) for b in batch_ids)


def _assert_each_prompt_once(emulator: EmulatorHandle) -> dict[str, object]:
    stats = emulator.stats()
    per_prompt = stats["per_prompt"]
    assert sorted(per_prompt) == sorted(row["prompt"] for row in ROWS)
    assert set(per_prompt.values()) == {1}, per_prompt
    return stats


@pytest.fixture
def embedded(tmp_path: Path, emulator: EmulatorHandle) -> Iterator[Fleet]:
    env = fleet_env(home=tmp_path / "home", **vertex_settings(emulator.url))
    fleet = Fleet(env=env, log_dir=tmp_path)
    yield fleet
    fleet.stop()


def test_three_concurrent_runs_of_one_manifest_pay_each_prompt_once(
    embedded: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(latency_mean_s=0.3)
    manifest = write_manifest(tmp_path / "m", ROWS)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "stencil", "run", str(manifest), "--json"],
            env=embedded.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=240) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
    views = [json.loads(out) for out, _ in outputs]
    for view in views:
        assert view["counts"] == {"succeeded": len(ROWS)}
    stats = _assert_each_prompt_once(emulator)
    batch_ids = [view["request_id"] for view in views]
    assert _total_cost_micros(embedded, batch_ids) == stats["bill_micros"] > 0
    # every batch hands back an image that exists, with the bytes of the one paid call
    home = Path(embedded.env["STENCIL_DATA_DIR"]) / "output"
    for view in views:
        for row in view["results"]:
            assert (home / row["storage_key"]).stat().st_size > 0


@pytest.fixture
def fleet(tmp_path: Path, emulator: EmulatorHandle, pg_url: str, redis_url: str) -> Iterator[Fleet]:
    env = fleet_env(
        home=tmp_path / "home", pg_url=pg_url, redis_url=redis_url, **vertex_settings(emulator.url)
    )
    fleet = Fleet(env=env, log_dir=tmp_path)
    assert fleet.cli("db", "upgrade").returncode == 0
    yield fleet
    fleet.stop()


def test_fleet_runs_three_submits_of_one_manifest_and_pays_each_prompt_once(
    fleet: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    emulator.configure(latency_mean_s=0.4)
    manifest = write_manifest(tmp_path / "m", ROWS)
    batch_ids = [fleet.json("submit", str(manifest))["request_id"] for _ in range(3)]
    fleet.start_scheduler()
    fleet.start_worker("w1", concurrency=8)
    fleet.start_worker("w2", concurrency=8)
    for batch_id in batch_ids:
        view = fleet.wait_done(batch_id, timeout=180)
        assert view["counts"] == {"succeeded": len(ROWS)}, view
    stats = _assert_each_prompt_once(emulator)
    assert _total_cost_micros(fleet, batch_ids) == stats["bill_micros"] > 0


def test_running_the_same_manifest_again_after_ctrl_c_continues_without_paying_twice(
    embedded: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    from tests.hostile.test_interrupts import start_run, wait_for_calls

    emulator.configure(latency_mean_s=0.3)
    env = {**embedded.env, "STENCIL_WINDOW_INITIAL": "3", "STENCIL_WINDOW_CEILING": "3"}
    manifest = write_manifest(tmp_path / "m", ROWS)
    first = start_run(env, tmp_path, str(manifest))
    wait_for_calls(emulator, first, 5)
    first.process.send_signal(signal.SIGINT)
    assert first.process.wait(timeout=60) == 130, first.stderr
    old_batch = first.batch_id()
    assert f"stencil run {old_batch}" in first.stderr
    done_before = emulator.stats()["requests"]
    assert 0 < done_before < len(ROWS)

    again = embedded.cli("run", str(manifest), "--json", timeout=240)  # what users do
    assert again.returncode == 0, again.stderr
    view = json.loads(again.stdout)
    assert view["counts"] == {"succeeded": len(ROWS)}
    reused = [row for row in view["results"] if row["reused_from"]]
    assert len(reused) >= done_before - 3  # what the first run made (less calls cut short)

    # and the old batch, continued later, completes from the images already made
    later = embedded.cli("run", old_batch, "--json", timeout=240)
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["counts"] == {"succeeded": len(ROWS)}
    stats = _assert_each_prompt_once(emulator)
    assert _total_cost_micros(embedded, [old_batch, view["request_id"]]) == stats["bill_micros"]
