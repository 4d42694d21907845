"""The page: header facts, escaped data, reasons in place of images, phone-ready markup."""

from __future__ import annotations

import json
import re
from typing import Any

from stencil.gallery.page import Card, render_page, script_json

BATCH: dict[str, Any] = {
    "request_id": "b_test",
    "name": "spring <catalog>",
    "status": "done",
    "provider": "preview",
    "model": "gemini-2.5-flash-image",
    "preview": True,
    "total": 3,
    "counts": {"succeeded": 2, "failed": 1},
    "cost_usd": 0.078,
    "created_at": "2026-05-01T10:20:30.123456+00:00",
    "finished_at": None,
}


def _cards() -> list[Card]:
    return [
        Card("i_1", "A-1", 1, "succeeded", 0.039, "a </script><script>alert(1)</script>", "k1",
             thumb_url="b_test_thumbs/abc.jpg", thumb_size=(256, 320), image_url="file:///x.png"),
        Card("i_2", "A-1", 2, "succeeded", 0.039, "p2", "k2", thumb_url="b_test_thumbs/def.jpg",
             review="rejected", review_note="too dark"),
        Card("i_3", "B-2", 1, "failed", 0.0, "p3", "k3", reason="invalid: bad request"),
    ]  # fmt: skip


def _data(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="gallery-data">(.*?)</script>', page)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_header_shows_counts_cost_model_provider_and_preview() -> None:
    page = render_page(batch=BATCH, cards=_cards(), generated_at="now")

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "spring &lt;catalog&gt;" in page and "spring <catalog>" not in page
    assert "Preview batch" in page and "no model was called" in page
    assert "$0.0780" in page and "gemini-2.5-flash-image" in page
    assert "2026-05-01 10:20:30 UTC" in page and "not yet" in page
    assert 'data-filter="failed"' in page and 'data-filter="succeeded"' in page


def test_real_model_batch_has_no_preview_banner() -> None:
    page = render_page(
        batch={**BATCH, "provider": "vertex", "preview": False}, cards=[], generated_at="now"
    )

    assert "Preview batch" not in page and "vertex" in page


def test_prompt_cannot_close_the_data_script() -> None:
    page = render_page(batch=BATCH, cards=_cards(), generated_at="now")

    assert "</script><script>alert(1)" not in page
    assert page.count("</script>") == 2  # the data block and the page script
    assert _data(page)["items"][0]["p"] == "a </script><script>alert(1)</script>"


def test_items_carry_thumbs_reasons_and_recorded_marks() -> None:
    page = render_page(batch=BATCH, cards=_cards(), generated_at="now")
    data = _data(page)

    assert data["batch_id"] == "b_test"
    first, second, failed = data["items"]
    assert first["t"] == "b_test_thumbs/abc.jpg" and (first["w"], first["h"]) == (256, 320)
    assert first["u"] == "file:///x.png" and "m" not in first
    assert (second["m"], second["n"]) == ("rejected", "too dark")
    assert failed["s"] == "failed" and failed["r"] == "invalid: bad request" and "t" not in failed


def test_page_is_self_contained() -> None:
    page = render_page(batch=BATCH, cards=_cards(), generated_at="now")

    assert "<style>" in page and "IntersectionObserver" in page and 'loading = "lazy"' in page
    assert not re.search(r"<(link|script)[^>]+(href|src)=", page)


def test_script_json_escapes_html_specials() -> None:
    text = script_json({"a": "<!-- & -->"})

    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "<!-- & -->"}
