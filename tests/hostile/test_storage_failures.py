"""A store that will not take images: each paid image is paid once, kept, and stored later.

Every test runs the real `stencil run` (its own worker process) against the Vertex emulator and
a store that really fails: a full tmpfs, a read-only bind mount, S3 buckets and credentials that
a real endpoint refuses. It checks the emulator's bill against the ledger, that no prompt was
generated twice, and that the batch stops with the store's own words.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stencil.catalog import estimate_micros
from stencil.emulator import EmulatorHandle
from stencil.settings import Settings
from tests.cli import ROOT, run_cli
from tests.fleet import Fleet, fleet_env, vertex_settings, write_manifest
from tests.hostile._storage import (
    AuthS3,
    Breakage,
    broken_store_command,
    metadata_trap,
    store_error_words,
    without_aws,
)
from tests.services import S3_ENV

pytestmark = pytest.mark.slow
ROWS = [{"sku": f"sku-{n:02d}", "prompt": f"a copper kettle, angle {n}"} for n in range(10)]
SLOW_START = {"STENCIL_WINDOW_INITIAL": "2"}  # a few calls in flight when the store fails


@pytest.fixture
def embedded(tmp_path: Path, emulator: EmulatorHandle) -> Iterator[Fleet]:
    env = fleet_env(home=tmp_path / "home", **vertex_settings(emulator.url), **SLOW_START)
    fleet = Fleet(env=env, log_dir=tmp_path)
    yield fleet
    fleet.stop()


def _run(
    fleet: Fleet, manifest: Path, *, store: Path | None = None, how: Breakage | None = None
) -> dict[str, Any]:
    """`stencil run --json`, with ``store`` broken ``how`` while it runs; the batch's view."""
    command = [sys.executable, "-m", "stencil", "run", str(manifest), "--json"]
    if store is not None and how is not None:
        command = broken_store_command(command, folder=store, how=how)
    done = subprocess.run(
        command, env=fleet.env, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 1, f"{done.returncode}\n{done.stderr[-3000:]}"  # not all succeeded
    view: dict[str, Any] = json.loads(done.stdout)
    return view


def _check_paid_once(emulator: EmulatorHandle, view: dict[str, Any]) -> dict[str, Any]:
    """Each prompt at most once, and the batch's ledger equals the emulator's bill."""
    stats = emulator.stats()
    per_prompt: dict[str, int] = stats["per_prompt"]
    assert per_prompt and set(per_prompt.values()) == {1}, per_prompt
    assert stats["requests"] == len(per_prompt)
    assert round(view["cost_usd"] * 1_000_000) == stats["bill_micros"] > 0
    return stats


def _stopped_by_storage(view: dict[str, Any], words: str) -> None:
    assert view["status"] == "stopped", view
    reason = view["stop_reason"] or ""
    assert reason.startswith("storage: ") and words in reason, reason
    statuses = {row["status"] for row in view["results"]}
    # nothing failed, nothing "budget_exhausted" (dispatched: sent before the stop, requeued later)
    assert statuses <= {"queued", "dispatched"}, statuses


def _spooled(fleet: Fleet) -> set[str]:
    spool = Path(fleet.env["STENCIL_DATA_DIR"]) / "spool"
    return {p.parent.name for p in spool.rglob("*.img")} if spool.exists() else set()


def _budget_usd(rows: list[dict[str, str]], share: float) -> float:
    """``share`` of the rows' estimate: retries that paid again would soon exhaust it."""
    spec = str(Settings.model_fields["model"].default)  # what the child processes use
    total = sum(
        estimate_micros(spec, prompt=r["prompt"], ref_count=0, image_size=None) for r in rows
    )
    return round(total * share / 1e6, 4)


def test_a_full_disk_pays_each_image_once_and_resume_stores_it_from_the_spool(
    embedded: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    store = Path(embedded.env["STENCIL_DATA_DIR"]) / "output"

    view = _run(embedded, write_manifest(tmp_path / "m", ROWS), store=store, how="full")

    batch_id = view["request_id"]
    _stopped_by_storage(view, store_error_words("full"))
    stats = _check_paid_once(emulator, view)
    called = {r["request_id"] for r in view["results"] if r["error"].startswith("unstored")}
    assert len(called) == stats["requests"] < len(ROWS)  # it stopped: the rest were never paid
    assert _spooled(embedded) == called  # every paid image is held

    # the disk has room again (the full tmpfs went away with the run): resume the batch
    assert embedded.cli("resume", batch_id).returncode == 0
    embedded.start_scheduler()
    embedded.start_worker()
    done = embedded.wait_done(batch_id)
    assert done["counts"] == {"succeeded": len(ROWS)}, done
    stats = _check_paid_once(emulator, done)
    assert stats["requests"] == len(ROWS)  # the held images were stored: no new call for them
    assert _spooled(embedded) == set()
    lines = embedded.cli("results", batch_id, "--format", "jsonl").stdout.splitlines()
    assert len(lines) == len(ROWS)
    for row in map(json.loads, lines):
        assert (store / row["storage_key"]).stat().st_size > 0


def test_a_read_only_store_shows_its_real_cause_not_the_budget(
    embedded: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m", ROWS, budget_usd=_budget_usd(ROWS, 1.5))
    store = Path(embedded.env["STENCIL_DATA_DIR"]) / "output"

    view = _run(embedded, manifest, store=store, how="read_only")
    store.chmod(0o755)  # where a folder without write permission stood in for a read-only mount

    words = store_error_words("read_only")
    _stopped_by_storage(view, words)
    _check_paid_once(emulator, view)
    assert _spooled(embedded)
    shown = run_cli("poll", view["request_id"], env={**embedded.env, "COLUMNS": "400"})
    assert words in " ".join(shown.stdout.split()), shown.stdout
    assert "budget_exhausted" not in shown.stdout


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthS3]:
    server = AuthS3(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.mark.parametrize("refusal", ["NoSuchBucket", "AccessDenied"])
def test_s3_that_refuses_stops_the_batch_with_the_code(
    tmp_path: Path,
    emulator: EmulatorHandle,
    s3_bucket: tuple[str, str],
    auth_s3: AuthS3,
    refusal: str,
) -> None:
    if refusal == "NoSuchBucket":  # the session's endpoint, a bucket nobody made
        s3, creds = (s3_bucket[0], f"{s3_bucket[1]}-missing"), dict(S3_ENV)
    else:  # real credentials of a user with no right to write (unknown keys: test_storage.py)
        s3, creds = (auth_s3.url, auth_s3.bucket), auth_s3.reader_env
    env = fleet_env(
        home=tmp_path / "home", s3=s3, s3_env=creds, **vertex_settings(emulator.url), **SLOW_START
    )
    fleet = Fleet(env=env, log_dir=tmp_path)
    try:
        view = _run(fleet, write_manifest(tmp_path / "m", ROWS[:6]))
        _stopped_by_storage(view, refusal)
        _check_paid_once(emulator, view)
        assert _spooled(fleet)
    finally:
        fleet.stop()


def test_an_s3_reference_without_s3_is_a_problem_at_submit(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    manifest = write_manifest(folder, ROWS[:2])
    manifest.write_text(
        manifest.read_text().replace(
            "aspect_ratio: '1:1'", "aspect_ratio: '1:1'\n  images: ['s3://some-bucket/ref.png']"
        )
    )
    with metadata_trap() as trap:
        env = without_aws(fleet_env(home=tmp_path / "home"), tmp_path, trap)
        done = subprocess.run(
            [sys.executable, "-m", "stencil", "submit", str(manifest)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "template.images" in done.stderr and "s3://some-bucket/ref.png" in done.stderr
        assert "Traceback" not in done.stderr
        assert trap.hits == 0  # boto3 never went looking for the metadata service
