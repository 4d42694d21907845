"""Automatic checks (issue 16, part 2): size and aspect ratio, blank images, near-duplicates in
a batch; configured in the manifest, run by the check runner apart from the calls."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from sqlalchemy import select

from models.db import session_scope
from models.queries import batches as batch_queries
from models.statuses import AttemptState
from models.tables import Item
from scheduler import control
from scheduler.manifest import SubmitOptions, load_plan
from scheduler.submit import submit
from stencil.catalog import pixel_size
from stencil.errors import ManifestError
from stencil.settings import Settings, get_settings
from stencil.storage import open_storage
from tests.worker.conftest import Embedded
from tests.worker.test_chains import env as env
from worker.checks.config import for_row, parse_template
from worker.checks.image import blank_problem, distance, measure, size_problem
from worker.checks.runner import run_round
from worker.execute import run_item
from worker.providers.base import ImageRequest, ImageResult

SETTINGS = Settings(_env_file=None, provider="preview", model="gemini-2.5-flash-image")


def png(width: int, height: int, seed: str | None) -> bytes:
    """Coarse random blocks (distinct per seed), or a uniform grey image when seed is None."""
    if seed is None:
        image = Image.new("L", (width, height), 128)
    else:
        rng = random.Random(hashlib.sha256(seed.encode()).digest())
        small = Image.new("L", (12, 12))
        small.putdata([rng.randrange(256) for _ in range(144)])
        image = small.resize((width, height), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.convert("RGB").save(out, "PNG")
    return out.getvalue()


class PatternProvider:
    """Distinct images per prompt; [[BLANK]] a uniform one, [[WIDE]] 16:9 whatever was asked,
    [[COPY]] the same image for every such prompt (a model that ignored the row)."""

    name = "preview"

    def generate(self, request: ImageRequest) -> ImageResult:
        width, height = pixel_size(request.aspect_ratio, request.image_size)
        seed: str | None = request.prompt
        if "[[BLANK]]" in request.prompt:
            seed = None
        if "[[WIDE]]" in request.prompt:
            width, height = pixel_size("16:9")
        if "[[COPY]]" in request.prompt:
            seed = "copy"
        return ImageResult(
            state=AttemptState.succeeded, image=png(width, height, seed), mime="image/png"
        )


def test_measures_shape_contrast_and_likeness() -> None:
    square = measure(png(1024, 1024, "a"))
    assert size_problem(square, "1:1", None) is None
    assert "aspect ratio 1024x1024 is not the requested 4:5" in (
        size_problem(square, "4:5", None) or ""
    )
    assert "size 1024x1024 is not the requested 4K" in (size_problem(square, "1:1", "4K") or "")
    assert blank_problem(square) is None
    assert "blank" in (blank_problem(measure(png(1024, 1024, None))) or "")
    other = measure(png(1024, 1024, "b"))
    assert distance(square.dhash, measure(png(512, 512, "a")).dhash) <= 2  # same picture
    assert distance(square.dhash, other.dhash) > 10


def test_manifest_settings_with_places_and_row_overrides() -> None:
    assert parse_template({"size": True, "blank": 6, "duplicates": True}) == (
        {"size": True, "blank": 6.0, "duplicates": 4},
        [],
    )
    _, problems = parse_template({"sizes": True, "blank": "x", "duplicates": 40})
    assert [fld for fld, _ in problems] == [
        "template.checks.sizes",
        "template.checks.blank",
        "template.checks.duplicates",
    ]
    template = {"size": True, "blank": 6.0}
    assert for_row(template, "") == (template, None)
    assert for_row(template, "none") == (None, None)
    assert for_row(template, "blank, duplicates") == ({"blank": 6.0, "duplicates": 4}, None)
    assert "unknown check 'ocr'" in (for_row(template, "ocr")[1] or "")


def manifest(folder: Path, rows: list[dict[str, str]], checks: Any) -> Path:
    body: dict[str, Any] = {
        "version": 1,
        "name": "checked",
        "key": "{{ sku }}",
        "template": {"prompt": "{{ prompt }}", "aspect_ratio": "1:1", "checks": checks},
        "rows": rows,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def test_a_bad_checks_setting_is_a_problem_with_its_place(tmp_path: Path) -> None:
    rows = [{"sku": "a", "prompt": "a", "checks": "size, ocr"}]
    path = manifest(tmp_path, rows, {"blank": -1})
    with pytest.raises(ManifestError) as caught:
        load_plan(path, options=SubmitOptions(), settings=SETTINGS, batch_id="b_q")
    found = [(p.row, p.field) for p in caught.value.problems]
    assert found == [(None, "template.checks.blank"), (0, "checks")]


def test_checks_run_after_storing_and_mark_only_the_bad_images(env: None, tmp_path: Path) -> None:
    rows = [
        {"sku": "good-1", "prompt": "a teapot", "checks": ""},
        {"sku": "good-2", "prompt": "a kettle", "checks": ""},
        {"sku": "blank", "prompt": "a cup [[BLANK]]", "checks": ""},
        {"sku": "wide", "prompt": "a jug [[WIDE]]", "checks": ""},
        {"sku": "copy-1", "prompt": "a mug [[COPY]]", "checks": ""},
        {"sku": "copy-2", "prompt": "a bowl [[COPY]]", "checks": ""},
        {"sku": "unchecked", "prompt": "a plate [[BLANK]]", "checks": "none"},
    ]
    path = manifest(tmp_path, rows, {"size": True, "blank": True, "duplicates": True})
    settings = get_settings()
    sub = submit(path, options=SubmitOptions(), settings=settings)
    emb = Embedded(settings=settings, batch_id=sub.batch_id)
    ctx = emb.context(PatternProvider())
    for _ in range(10):
        for item_id in emb.dispatch():
            run_item(item_id, ctx)
    with session_scope() as session:  # every image is stored; its checks have not run yet
        assert not batch_queries.close_if_finished(session=session, batch_id=sub.batch_id)
    storage = open_storage(settings)
    assert run_round(storage=storage) == 6
    with session_scope() as session:
        items = {
            i.key: i
            for i in session.scalars(select(Item).where(Item.batch_id == sub.batch_id)).all()
        }
        assert batch_queries.close_if_finished(session=session, batch_id=sub.batch_id)
    assert {k: i.status for k, i in items.items()} == {k["sku"]: "succeeded" for k in rows}
    qa = {k: i.qa for k, i in items.items()}
    assert qa == {
        "good-1": "passed",
        "good-2": "passed",
        "blank": "failed",
        "wide": "failed",
        "copy-1": "passed",  # the first of the two; the second is flagged against it
        "copy-2": "failed",
        "unchecked": None,
    }
    assert "blank" in (items["blank"].qa_note or "")
    assert "aspect ratio 1344x768 is not the requested 1:1" in (items["wide"].qa_note or "")
    assert "near-duplicate of 'copy-1' variant 1" in (items["copy-2"].qa_note or "")
    assert run_round(storage=storage) == 0  # nothing checked twice

    provider = PatternProvider()
    ctx = emb.context(provider)
    for attempt in (1, 2, 3):  # max_qa_retries: 2 -> two paid regenerations, then no more
        with session_scope() as session:
            result = control.retry(session=session, request_id=sub.batch_id, qa_failed=True)
        assert result.changed == (3 if attempt < 3 else 0)  # blank, wide, copy-2; not passed ones
        for item_id in emb.dispatch():
            run_item(item_id, ctx)
        run_round(storage=storage)
    with session_scope() as session:
        after = {
            i.key: i
            for i in session.scalars(select(Item).where(Item.batch_id == sub.batch_id)).all()
        }
    assert after["blank"].attempts == 1 and after["blank"].checks["qa_retries"] == 2  # type: ignore[index]
    assert after["blank"].output_key != items["blank"].output_key  # the first image is kept
    assert storage.exists(items["blank"].output_key)
    assert (
        after["good-1"].attempts == 1 and after["good-1"].output_key == items["good-1"].output_key
    )
    assert {k: i.qa for k, i in after.items() if i.qa == "failed"}.keys() == {
        "blank",
        "wide",
        "copy-2",
    }


def test_the_gallery_shows_check_results_and_filters_failed_ones() -> None:
    from stencil.gallery.page import Card, render_page
    from tests.stencil.gallery.test_page import BATCH, _data

    cards = [
        Card("i_1", "A", 1, "succeeded", 0.0, "p", "k1", qa="passed"),
        Card("i_2", "B", 1, "succeeded", 0.0, "p", "k2", qa="failed", qa_note="blank image"),
    ]
    page = render_page(batch=BATCH, cards=cards, generated_at="now")
    passed, failed = _data(page)["items"]
    assert passed["q"] == "passed" and failed == {**failed, "q": "failed", "qn": "blank image"}
    assert 'data-filter="qa:failed"' in page


@pytest.mark.slow
def test_stencil_run_checks_every_image_before_it_ends(stencil_env: Path, tmp_path: Path) -> None:
    from tests.cli import cli_json, run_cli

    rows = [{"sku": "a", "prompt": "a teapot"}, {"sku": "b", "prompt": "a kettle"}]
    path = manifest(tmp_path, rows, {"size": True, "blank": True})
    result = run_cli("run", str(path), "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["status"] == "done"
    for row in view["results"]:
        item = cli_json("poll", row["request_id"])
        assert item["checks"] == {"state": "passed", "note": None}


def test_expected_text_matching_tolerates_what_the_user_allows() -> None:
    from worker.checks.text import edits_to_find, normalise, text_problem

    assert normalise("  Ana   LIMA, Eng. ") == "ana lima eng"
    assert edits_to_find("ana lima", "badge for ana lima engineering") == 0
    assert edits_to_find("ana lima", "badge for anna lma") == 2
    assert text_problem("Ana Lima", "Badge for Anna Lma", 0.25) is None
    problem = text_problem("Ana Lima", "Badge for Bo Chen", 0.1) or ""
    assert "expected text 'Ana Lima' not found; read 'Badge for Bo Chen'" in problem


class MisspellingProvider:
    """Preview images (the prompt drawn as text); [[MISSPELL]] draws another name instead."""

    name = "preview"

    def generate(self, request: ImageRequest) -> ImageResult:
        from dataclasses import replace

        from worker.providers.preview import PreviewProvider

        prompt = request.prompt.replace("[[MISSPELL]]", "")
        if "[[MISSPELL]]" in request.prompt:
            prompt = prompt.replace("Ana Lima", "Bruno Silva")
        return PreviewProvider().generate(replace(request, prompt=prompt))


def test_ocr_reads_the_expected_text_and_flags_an_image_that_lacks_it(
    env: None, tmp_path: Path
) -> None:
    rows = [
        {"sku": "ana", "prompt": "Badge for Ana Lima, engineering", "name": "Ana Lima"},
        {"sku": "bo", "prompt": "Badge for Bo Chen, sales", "name": "Bo Chen"},
        {"sku": "bad", "prompt": "Badge for Ana Lima [[MISSPELL]]", "name": "Ana Lima"},
    ]
    checks = {"expect_text": "{{ name }}", "text_tolerance": 0.2}
    settings = get_settings()
    sub = submit(manifest(tmp_path, rows, checks), options=SubmitOptions(), settings=settings)
    emb = Embedded(settings=settings, batch_id=sub.batch_id)
    ctx = emb.context(MisspellingProvider())
    for _ in range(5):
        for item_id in emb.dispatch():
            run_item(item_id, ctx)
    assert run_round(storage=open_storage(settings)) == 3
    with session_scope() as session:
        items = {
            i.key: i
            for i in session.scalars(select(Item).where(Item.batch_id == sub.batch_id)).all()
        }
    assert items["ana"].checks == {"expect_text": "Ana Lima", "text_tolerance": 0.2}
    assert (items["ana"].qa, items["bo"].qa, items["bad"].qa) == ("passed", "passed", "failed")
    note = items["bad"].qa_note or ""
    assert "expected text 'Ana Lima' not found; read '" in note and "Bruno Silva" in note
