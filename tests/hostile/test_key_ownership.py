"""One owner per output key: no batch's image is ever replaced by another's.

A second batch writing the same keys is refused at submit (naming the batch that owns them),
or with --force writes new versions beside them; two submits racing for one key have one
winner; reuse never hands out an image that is gone; a reference altered in the store is
never sent to the model.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from stencil.emulator import EmulatorHandle
from stencil.errors import ManifestError
from tests.cli import ROOT
from tests.fleet import Fleet, fleet_env, vertex_settings, write_manifest

pytestmark = pytest.mark.slow
HERO = "hero/{{ sku }}.png"  # an output template without the batch in it
ROWS = [{"sku": "a", "prompt": "a red chair"}, {"sku": "b", "prompt": "a blue lamp"}]
CHANGED = [{"sku": "a", "prompt": "a green chair"}, {"sku": "b", "prompt": "a gold lamp"}]


@pytest.fixture
def preview(tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(env=fleet_env(home=tmp_path / "home"), log_dir=tmp_path)
    yield fleet
    fleet.stop()


@pytest.fixture
def vertex(tmp_path: Path, emulator: EmulatorHandle) -> Iterator[Fleet]:
    fleet = Fleet(
        env=fleet_env(home=tmp_path / "home", **vertex_settings(emulator.url)), log_dir=tmp_path
    )
    yield fleet
    fleet.stop()


def _output(fleet: Fleet) -> Path:
    return Path(fleet.env["STENCIL_DATA_DIR"]) / "output"


def _run(fleet: Fleet, manifest: Path, *flags: str) -> dict[str, Any]:
    done = fleet.cli("run", str(manifest), "--json", *flags, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    view: dict[str, Any] = json.loads(done.stdout)
    return view


def test_a_second_batch_cannot_replace_an_image_and_force_writes_a_new_version(
    preview: Fleet, tmp_path: Path
) -> None:
    first = _run(preview, write_manifest(tmp_path / "one", ROWS, output=HERO))
    out = _output(preview)
    before = {p.name: p.read_bytes() for p in (out / "hero").iterdir()}
    assert set(before) == {"a.png", "a.png.json", "b.png", "b.png.json"}

    second = write_manifest(tmp_path / "two", CHANGED, output=HERO)
    refused = preview.cli("submit", str(second))

    assert refused.returncode == 2, refused.stderr
    err = " ".join(refused.stderr.split())
    assert "'hero/a.png'" in err and "'hero/b.png'" in err and first["request_id"] in err
    assert "--force" in err and "{{ batch }}" in err and "Traceback" not in err
    assert len(preview.json("ls")) == 1  # nothing was submitted

    forced = _run(preview, second, "--force")
    assert sorted(r["storage_key"] for r in forced["results"]) == ["hero/a.v2.png", "hero/b.v2.png"]
    after = {p.name: p.read_bytes() for p in (out / "hero").iterdir()}
    for name, data in before.items():
        assert after[name] == data  # the first batch's images and sidecars, byte for byte
    assert json.loads(after["a.png.json"])["batch_id"] == first["request_id"]
    assert json.loads(after["a.v2.png.json"])["batch_id"] == forced["request_id"]
    lines = preview.cli("results", first["request_id"], "--format", "jsonl").stdout.splitlines()
    assert sorted(json.loads(line)["storage_key"] for line in lines) == ["hero/a.png", "hero/b.png"]


def test_a_resubmit_after_the_image_was_deleted_generates_it_again(
    vertex: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    rows = [*ROWS, {"sku": "c", "prompt": "a grey rug"}]
    manifest = write_manifest(tmp_path / "m", rows)
    first = _run(vertex, manifest)
    keys = {r["key"]: r["storage_key"] for r in first["results"]}
    out = _output(vertex)
    (out / keys["a"]).unlink()  # deleted by hand
    sidecar = out / (keys["b"] + ".json")  # replaced by something that is not b's image
    body = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**body, "fingerprint": "0" * 64}))

    dry = vertex.json("submit", str(manifest), "--dry-run")
    assert dry["reused"] == 1  # only c: a's image is gone, b's sidecar names another image

    again = _run(vertex, manifest)
    by_key = {r["key"]: r for r in again["results"]}
    assert (out / by_key["a"]["storage_key"]).is_file()
    assert by_key["a"]["storage_key"] != keys["a"]  # its own new image, not the missing one
    assert by_key["c"]["storage_key"] == keys["c"]  # reused
    per_prompt = emulator.stats()["per_prompt"]
    assert per_prompt["a red chair"] == 2 and per_prompt["a grey rug"] == 1  # a paid again, c not
    bill = emulator.stats()["bill_micros"]
    assert round((first["cost_usd"] + again["cost_usd"]) * 1_000_000) == bill


def test_an_altered_reference_is_never_sent(
    vertex: Fleet, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "ref.png").write_bytes((ROOT / "manifests/catalog/refs/brand-style.png").read_bytes())
    manifest = write_manifest(folder, ROWS)
    manifest.write_text(
        manifest.read_text().replace(
            "aspect_ratio: '1:1'", "aspect_ratio: '1:1'\n  images: [ref.png]"
        )
    )
    batch_id = vertex.json("submit", str(manifest))["request_id"]
    [stored] = (_output(vertex) / "_refs").iterdir()
    digest = stored.name.split(".")[0]
    stored.write_bytes((ROOT / "manifests/catalog/photos/a100.png").read_bytes())  # swapped

    vertex.start_scheduler()
    vertex.start_worker()
    deadline = time.monotonic() + 90
    view = vertex.json("poll", batch_id)
    while view["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.3)
        view = vertex.json("poll", batch_id)
    assert view["status"] == "stopped", vertex.logs()
    assert view["stop_reason"].startswith("reference image:")
    assert "does not match its digest" in view["stop_reason"]
    assert emulator.stats()["requests"] == 0  # nothing was sent, nothing paid

    vertex.json("submit", str(manifest))  # submitting again puts the right bytes back
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest


@pytest.fixture
def on_postgres(tmp_path: Path, pg_url: str) -> Fleet:
    fleet = Fleet(env=fleet_env(home=tmp_path / "home", pg_url=pg_url), log_dir=tmp_path)
    assert fleet.cli("db", "upgrade").returncode == 0
    return fleet


def test_two_submits_racing_for_one_key_have_one_winner(on_postgres: Fleet, tmp_path: Path) -> None:
    manifests = [
        write_manifest(tmp_path / "one", ROWS, output=HERO),
        write_manifest(tmp_path / "two", CHANGED, output=HERO),
    ]
    submits = [
        subprocess.Popen(
            [sys.executable, "-m", "stencil", "submit", str(m)],
            env=on_postgres.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in manifests
    ]
    outputs = [p.communicate(timeout=120) for p in submits]

    codes = sorted(p.returncode for p in submits)
    assert codes == [0, 2], outputs
    winner = next(
        out.strip() for p, (out, _) in zip(submits, outputs, strict=True) if p.returncode == 0
    )
    loser_err = next(err for p, (_, err) in zip(submits, outputs, strict=True) if p.returncode == 2)
    assert winner in loser_err and "hero/" in loser_err and "Traceback" not in loser_err
    assert [b["request_id"] for b in on_postgres.json("ls")] == [winner]


def test_a_claim_that_commits_first_turns_into_the_same_problem(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: another claim of the key is held open until this submit waits on it."""
    from models import db
    from models.migrate import upgrade
    from models.tables import Batch, Item
    from scheduler.manifest import SubmitOptions
    from scheduler.submit import submit
    from stencil.settings import get_settings

    monkeypatch.setenv("STENCIL_DATABASE_URL", pg_url)
    monkeypatch.setenv("STENCIL_DATA_DIR", str(tmp_path / "home"))
    get_settings.cache_clear()
    settings = get_settings()
    upgrade(db.get_engine())
    try:
        other = submit(
            write_manifest(tmp_path / "o", ROWS), options=SubmitOptions(), settings=settings
        )
        with db.session_scope() as session:
            item_id = session.scalars(
                select(Item.id).where(Item.batch_id == other.batch_id, Item.seq == 0)
            ).one()
        racing = write_manifest(tmp_path / "m", CHANGED, output=HERO)
        errors: list[BaseException] = []

        def submit_racing() -> None:
            try:
                submit(racing, options=SubmitOptions(), settings=settings)
            except BaseException as exc:
                errors.append(exc)

        with psycopg.connect(pg_url) as held:
            held.execute(
                "INSERT INTO output_keys (key, item_id, batch_id, claimed_at) "
                "VALUES ('hero/a.png', %s, %s, now())",
                (item_id, other.batch_id),
            )  # not committed yet: the racing submit does not see it when it looks
            thread = threading.Thread(target=submit_racing)
            thread.start()
            _wait_for_a_lock_wait(pg_url)
            held.commit()
            thread.join(60)

        assert len(errors) == 1 and isinstance(errors[0], ManifestError), errors
        assert "'hero/a.png'" in str(errors[0]) and other.batch_id in str(errors[0])
        with db.session_scope() as session:
            assert session.scalar(select(func.count()).select_from(Batch)) == 1  # nothing written
    finally:
        db.engine_for(settings.resolved_database_url).dispose()
        db.engine_for.cache_clear()
        get_settings.cache_clear()


def _wait_for_a_lock_wait(pg_url: str) -> None:
    """Until some backend waits on a lock (the racing submit's claim)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(pg_url, autocommit=True) as watch:
        while time.monotonic() < deadline:
            row = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the racing submit never waited for the held claim")
