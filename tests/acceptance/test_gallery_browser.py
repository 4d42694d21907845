"""The review loop in a real headless Chromium: gallery, filters, marks, export, import, retry.

One catalog item is made `failed` by a direct database update before the gallery is built: the
page only needs an item in that state with a reason, and the preview provider never fails.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from models.db import get_engine, session_scope
from models.schema import ensure_schema
from models.tables import Attempt, Item
from stencil.gallery import build_gallery, default_path
from stencil.storage.local import LocalStorage
from tests.cli import ROOT, cli_json, run_cli
from tests.fleet import Fleet, fleet_env
from tests.services import unavailable
from tests.stencil.gallery.seed import seed_batch

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CATALOG = ROOT / "manifests" / "catalog" / "catalog.yaml"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
FAILED_SEQ = 5
ALL_IMAGES_LOADED = """() => {
  const imgs = [...document.querySelectorAll('#grid img')];
  return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0);
}"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 from a thread."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _items(batch_id: str) -> dict[str, dict[str, Any]]:
    with session_scope() as session:
        rows = session.scalars(select(Item).where(Item.batch_id == batch_id)).all()
        attempts = dict(
            session.execute(
                select(Attempt.item_id, func.count())
                .where(Attempt.batch_id == batch_id)
                .group_by(Attempt.item_id)
            ).all()
        )
        return {
            i.id: {"seq": i.seq, "key": i.key, "variant": i.variant, "status": i.status,
                   "output_key": i.output_key, "review": i.review, "finished_at": i.finished_at,
                   "attempt_rows": attempts.get(i.id, 0)}
            for i in rows
        }  # fmt: skip


def _load_every_thumbnail(page: Any) -> int:
    """Scroll each image into view (they are lazy) and wait until all have pixels."""
    count = int(page.locator("#grid img").count())
    for index in range(count):
        page.locator("#grid img").nth(index).scroll_into_view_if_needed()
    page.wait_for_function(ALL_IMAGES_LOADED, timeout=15_000)
    return count


def _visible_ids(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#grid .card", "cs => cs.map(c => c.dataset.id)"))


def test_review_loop_in_chromium(stencil_env: Path, tmp_path: Path, browser: Any) -> None:
    run = run_cli("run", str(CATALOG), "--json", timeout=120)
    assert run.returncode == 0, run.stderr
    batch_id = json.loads(run.stdout)["request_id"]
    ensure_schema(get_engine())
    with session_scope() as session:
        failed = session.scalars(
            select(Item).where(Item.batch_id == batch_id, Item.seq == FAILED_SEQ)
        ).one()
        failed.status, failed.error_kind = "failed", "invalid"
        failed.error_message = "400 INVALID_ARGUMENT: made to fail by the test"
        failed_id = failed.id
    before = _items(batch_id)
    order = sorted(before, key=lambda i: before[i]["seq"])
    succeeded = [i for i in order if i != failed_id]

    view = cli_json("gallery", batch_id)
    page_path = Path(view["path"])
    assert page_path == default_path(stencil_env, batch_id)

    with serve(page_path.parent) as base:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/{page_path.name}")

        assert "Preview batch" in page.locator(".preview-note").inner_text()
        assert _visible_ids(page) == order
        assert _load_every_thumbnail(page) == len(succeeded)
        failed_card = page.locator(f'.card[data-id="{failed_id}"]')
        assert "made to fail by the test" in failed_card.inner_text()
        assert failed_card.locator("img").count() == 0

        page.click('#filters [data-filter="failed"]')
        assert _visible_ids(page) == [failed_id]
        page.click('#filters [data-filter="succeeded"]')
        assert _visible_ids(page) == succeeded
        page.click('#filters [data-filter="all"]')
        assert _visible_ids(page) == order

        first_card = page.locator(f'.card[data-id="{succeeded[0]}"]')
        prompt = cli_json("poll", succeeded[0])["prompt"]
        assert first_card.locator(".media").get_attribute("title") == prompt  # on hover
        first_card.locator(".media").click()  # and on click
        assert page.locator("#prompt-dialog").is_visible()
        assert page.locator("#prompt-text").inner_text().strip() == prompt.strip()
        page.locator("#prompt-dialog button").click()
        first_card.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "gallery.png"))  # before marking, for a look
        rejected = [succeeded[0], succeeded[3]]
        approved = succeeded[1]
        page.locator(f'.card[data-id="{rejected[0]}"] .reject').click()
        card = page.locator(f'.card[data-id="{rejected[1]}"]')
        card.locator(".reject").click()
        card.locator(".note").fill("background too dark")
        page.locator(f'.card[data-id="{approved}"] .approve').click()

        page.reload()  # marks persist in localStorage
        assert page.locator(f'.card[data-id="{rejected[1]}"] .note').input_value() == (
            "background too dark"
        )
        page.click('#filters [data-filter="review:rejected"]')
        assert _visible_ids(page) == rejected
        page.click('#filters [data-filter="all"]')
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "gallery-marked.png"))
        with page.expect_download() as download_info:
            page.click("#export")
        marks_file = tmp_path / "marks.json"
        download_info.value.save_as(str(marks_file))

        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        phone_page = phone.new_page()
        phone_page.goto(f"{base}/{page_path.name}")
        assert _load_every_thumbnail(phone_page) == len(succeeded)
        phone_page.evaluate("window.scrollTo(0, 0)")
        phone_page.screenshot(path=str(ARTIFACTS / "gallery-phone.png"))
        phone.close()
        context.close()
        assert errors == []

    exported = json.loads(marks_file.read_text())

    def entry(item_id: str, mark: str, note: str = "") -> dict[str, Any]:
        item = before[item_id]
        return {"request_id": item_id, "key": item["key"], "variant": item["variant"],
                "mark": mark, "note": note}  # fmt: skip

    assert exported == {
        "batch_id": batch_id,
        "marks": [
            entry(rejected[0], "rejected"),
            entry(approved, "approved"),
            entry(rejected[1], "rejected", "background too dark"),
        ],
    }

    imported = cli_json("review", "import", str(marks_file))
    assert imported == {"batch_id": batch_id, "recorded": 3, "approved": 1, "rejected": 2}
    results = cli_json("poll", batch_id, "--items")
    marks = {i["request_id"]: (i["review"], i["review_note"]) for i in results["items"]}
    assert marks[rejected[1]] == ("rejected", "background too dark")
    assert marks[approved] == ("approved", None)
    retried = cli_json("retry", batch_id, "--rejected")
    assert retried["changed"] == 2

    fleet = Fleet(env=fleet_env(home=stencil_env), log_dir=tmp_path)
    try:
        fleet.start_worker(concurrency=4)
        fleet.start_scheduler()
        fleet.wait_done(batch_id, timeout=60)
    finally:
        fleet.stop()

    after = _items(batch_id)
    output = stencil_env / "output"
    for item_id in order:
        old, new = before[item_id], after[item_id]
        if item_id in rejected:
            assert new["status"] == "succeeded"
            assert new["output_key"] == old["output_key"].removesuffix(".png") + ".r2.png"
            assert new["attempt_rows"] == old["attempt_rows"] + 1
            assert (output / new["output_key"]).is_file()
            assert (output / old["output_key"]).is_file()  # the rejected image is kept
            assert new["review"] is None
        else:
            assert {**new, "review": None} == old  # untouched: same image, attempts, times
    assert after[approved]["review"] == "approved"


def test_five_thousand_items_render_in_chunks(stencil_env: Path, browser: Any) -> None:
    ensure_schema(get_engine())
    store = LocalStorage(stencil_env / "output")
    failures = {n: ("failed", "invalid", "bad") for n in range(0, 5000, 50)}
    with session_scope() as session:
        seeded = seed_batch(session, store, count=5000, statuses=failures, size=(32, 40))
        gallery = build_gallery(
            session=session, batch_id=seeded.batch_id, storage=store,
            out=default_path(stencil_env, seeded.batch_id), ttl_s=60,
        )  # fmt: skip
    assert gallery.thumbs_made == 4900

    with serve(gallery.path.parent) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/{gallery.path.name}")
        first = page.locator("#grid .card").count()
        assert 0 < first < 500  # a chunk, not 5,000 cards
        assert page.locator("#showing").inner_text() == "showing 5000 of 5000"
        for _ in range(3):
            page.mouse.wheel(0, 20_000)
            page.wait_for_function(f"document.querySelectorAll('#grid .card').length > {first}")
            first = page.locator("#grid .card").count()
        assert first < 5000
        page.click('#filters [data-filter="failed"]')
        assert page.locator("#showing").inner_text() == "showing 100 of 5000"
        assert page.eval_on_selector_all(
            "#grid .card", "cs => cs.every(c => c.dataset.status === 'failed')"
        )
        page.close()
