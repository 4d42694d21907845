"""Chained references on the fleet: Postgres, Redis, scheduler and worker processes, and the
Vertex emulator through the real SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from stencil.emulator import EmulatorHandle
from tests.fleet import Fleet, fleet_env, vertex_settings
from tests.worker.test_chains import SAFETY, chain_manifest, three_levels

pytestmark = pytest.mark.slow


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str, redis_url: str, emu: EmulatorHandle) -> Iterator[Fleet]:
    env = fleet_env(home=tmp_path / "home", pg_url=pg_url, redis_url=redis_url)
    env.update(vertex_settings(emu.url))
    fleet = Fleet(env=env, log_dir=tmp_path)
    upgraded = fleet.cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    yield fleet
    fleet.stop()


def test_chains_run_in_order_end_with_a_blocked_hero_and_rerun_only_what_changed(
    fleet: Fleet, emu: EmulatorHandle, pg_url: str, tmp_path: Path
) -> None:
    rows = three_levels("p1") + three_levels("p2", f"hero of p2 {SAFETY}") + three_levels("p3")
    cycle = [{"sku": "a", "prompt": "a", "after": "b"}, {"sku": "b", "prompt": "b", "after": "a"}]
    refused = fleet.cli("submit", str(chain_manifest(tmp_path / "cycle", cycle)))
    assert refused.returncode == 2 and "cycle: " in refused.stderr

    first = fleet.json("submit", str(chain_manifest(tmp_path / "first", rows)))
    fleet.start_scheduler()
    fleet.start_worker()
    fleet.wait_done(first["request_id"])
    items = {i["key"]: i for i in fleet.json("poll", first["request_id"], "--items")["items"]}
    for product in ("p1", "p3"):
        assert {items[f"{product}-{s}"]["status"] for s in ("hero", "angle", "card")} == {
            "succeeded"
        }, fleet.logs()
    assert items["p2-hero"]["status"] == "blocked"
    for key in ("p2-angle", "p2-card"):
        assert items[key]["status"] == "dependency_failed"
        assert items[key]["cost_usd"] == 0.0 and items[key]["attempts"] == 0
    assert "'p2-hero'" in items["p2-angle"]["error"]["message"]
    per_prompt = emu.stats()["per_prompt"]
    assert "angle of p2" not in per_prompt and "card of p2" not in per_prompt

    engine = create_engine(pg_url)
    with engine.connect() as conn:  # no dependent started before its dependency's call ended
        order = []
        for product in ("p1", "p3"):
            for dep, child in (("hero", "angle"), ("angle", "card")):
                row = conn.execute(
                    text(
                        "SELECT da.finished_at, ca.started_at FROM items c"
                        " JOIN attempts ca ON ca.item_id = c.id"
                        " JOIN items d ON d.batch_id = c.batch_id AND d.key = :dep"
                        " JOIN attempts da ON da.item_id = d.id"
                        " WHERE c.key = :child AND c.batch_id = :batch"
                    ),
                    {
                        "dep": f"{product}-{dep}",
                        "child": f"{product}-{child}",
                        "batch": first["request_id"],
                    },
                ).one()
                order.append(row.started_at >= row.finished_at)
    engine.dispose()
    assert order == [True] * 4

    changed = three_levels("p1", "hero of p1, new") + three_levels("p3")
    second = fleet.json("submit", str(chain_manifest(tmp_path / "second", changed)))
    assert second["reused"] == 3  # p3's chain, at once: its hero's image is the same
    fleet.wait_done(second["request_id"])
    final = fleet.json("poll", second["request_id"])
    assert final["counts"] == {"succeeded": 6}
    per_prompt = emu.stats()["per_prompt"]
    assert {p: n for p, n in per_prompt.items() if "p1" in p or "p3" in p} == {
        "hero of p1": 1,
        "angle of p1": 2,
        # the emulator's image depends on the prompt alone: the new angle has the old one's
        # bytes, so the card's fingerprint (with that digest) is unchanged and it is reused
        "card of p1": 1,
        "hero of p1, new": 1,
        "hero of p3": 1,
        "angle of p3": 1,
        "card of p3": 1,
    }
