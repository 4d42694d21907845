"""Automatic checks on the fleet: Postgres, Redis, scheduler (with its check runner) and worker
processes, and the Vertex emulator through the real SDK drawing the prompt into its images
(knob ``image_text``), so Tesseract reads what the "model" wrote."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from stencil.emulator import EmulatorHandle
from tests.fleet import Fleet, fleet_env, vertex_settings, write_manifest

pytestmark = pytest.mark.slow

BADGES = [
    {"sku": "ana", "prompt": "Badge for Ana Lima", "name": "Ana Lima"},
    {"sku": "bo", "prompt": "Badge for Bo Chen", "name": "Bo Chen"},
    {"sku": "cy", "prompt": "Badge for Cyril Okafor [[MISSPELL]]", "name": "Cyril Okafor"},
    {"sku": "dee", "prompt": "Badge for Deepa Rao", "name": "Deepa Rao"},
]


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str, redis_url: str, emu: EmulatorHandle) -> Iterator[Fleet]:
    env = fleet_env(home=tmp_path / "home", pg_url=pg_url, redis_url=redis_url)
    env.update(vertex_settings(emu.url))
    fleet = Fleet(env=env, log_dir=tmp_path)
    upgraded = fleet.cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    yield fleet
    fleet.stop()


def wait_checked(fleet: Fleet, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll until the batch is done: every item ended and every stored image checked."""
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = fleet.json("poll", batch_id, "--items")
        if view["status"] == "done":
            return view
        time.sleep(0.5)
    raise AssertionError(f"batch not checked: {view}\n{fleet.logs()}")


def ledger(pg_url: str, batch_id: str) -> tuple[int, int]:
    """(attempts, their cost in micros) the record holds for the batch."""
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), coalesce(sum(cost_micros), 0) FROM attempts WHERE batch_id = :b"
            ),
            {"b": batch_id},
        ).one()
    engine.dispose()
    return int(row[0]), int(row[1])


def attempts_per_key(pg_url: str, batch_id: str) -> dict[str, int]:
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT i.key, count(*) FROM attempts a JOIN items i ON i.id = a.item_id"
                " WHERE a.batch_id = :b GROUP BY i.key"
            ),
            {"b": batch_id},
        ).all()
    engine.dispose()
    return {str(r[0]): int(r[1]) for r in rows}


def test_ocr_passes_correct_badges_flags_misspelt_text_and_retry_regenerates_only_those(
    fleet: Fleet, emu: EmulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    emu.configure(image_text="{prompt}")
    checks = {"expect_text": "{{ name }}", "text_tolerance": 0.1, "max_qa_retries": 1}
    path = write_manifest(
        tmp_path / "badges",
        BADGES,
        template={"prompt": "{{ prompt }}", "aspect_ratio": "3:4", "checks": checks},
    )
    first = fleet.json("submit", str(path))
    batch = first["request_id"]
    fleet.start_scheduler()
    fleet.start_worker()
    view = wait_checked(fleet, batch)
    items = {i["key"]: i for i in view["items"]}
    assert {k: i["status"] for k, i in items.items()} == dict.fromkeys(items, "succeeded")
    assert {k: i["checks"]["state"] for k, i in items.items()} == {
        "ana": "passed",
        "bo": "passed",
        "cy": "failed",
        "dee": "passed",
    }, fleet.logs()
    note = items["cy"]["checks"]["note"]
    assert "expected text 'Cyril Okafor' not found; read 'Bdage for Cryil Oakfor'" in note

    retried = fleet.json("retry", batch, "--qa-failed", "--json")
    assert retried["changed"] == 1
    view = wait_checked(fleet, batch)
    after = {i["key"]: i for i in view["items"]}
    assert attempts_per_key(pg_url, batch) == {"ana": 1, "bo": 1, "cy": 2, "dee": 1}
    assert after["cy"]["storage_key"] != items["cy"]["storage_key"]  # the flagged image is kept
    assert after["cy"]["checks"]["state"] == "failed"  # the emulator misspells it again
    assert {k: after[k]["storage_key"] for k in ("ana", "bo", "dee")} == {
        k: items[k]["storage_key"] for k in ("ana", "bo", "dee")
    }
    again = fleet.json("retry", batch, "--qa-failed", "--json")
    assert again["changed"] == 0  # max_qa_retries: 1 bounds the paid regenerations

    stats = emu.stats()
    assert stats["per_prompt"] == {
        "Badge for Ana Lima": 1,
        "Badge for Bo Chen": 1,
        "Badge for Cyril Okafor [[MISSPELL]]": 2,
        "Badge for Deepa Rao": 1,
    }
    assert stats["requests"] == 5  # every paid call is an attempt in the ledger, at its price
    assert ledger(pg_url, batch) == (stats["requests"], stats["bill_micros"])
