"""Building a batch's gallery from the record: page, thumbnails beside it, upload to S3."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from models.tables import Item
from scheduler import control
from stencil.errors import InputError, NotFoundError
from stencil.gallery import build_gallery, default_path, thumbs_dir_for
from stencil.storage.local import LocalStorage
from stencil.storage.s3 import S3Storage
from tests.stencil.gallery.seed import seed_batch


def _data(page: Path | str) -> dict[str, Any]:
    text = page.read_text() if isinstance(page, Path) else page
    match = re.search(r'id="gallery-data">(.*?)</script>', text)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def test_gallery_page_and_thumbnails(
    session: Session, store: LocalStorage, stencil_env: Path
) -> None:
    seeded = seed_batch(
        session, store, count=6,
        statuses={2: ("failed", "invalid", "400 bad request"), 4: ("cancelled", None, None)},
    )  # fmt: skip
    out = default_path(stencil_env, seeded.batch_id)

    gallery = build_gallery(
        session=session, batch_id=seeded.batch_id, storage=store, out=out, ttl_s=60
    )

    assert gallery.path == out == stencil_env.resolve() / "galleries" / f"{seeded.batch_id}.html"
    assert gallery.thumbs_dir == thumbs_dir_for(out) == out.with_name(f"{seeded.batch_id}_thumbs")
    assert (gallery.items, gallery.thumbs_made, gallery.thumbs_kept) == (6, 4, 0)
    items = _data(out)["items"]
    assert [i["id"] for i in items] == seeded.item_ids
    for item in items:
        if item["s"] == "succeeded":
            assert item["t"].startswith(f"{seeded.batch_id}_thumbs/")
            assert (out.parent / item["t"]).is_file()
        else:
            assert "t" not in item
    assert items[2]["r"] == "invalid: 400 bad request"
    assert items[4]["r"] == "cancelled before it was generated"


def test_rebuild_keeps_thumbnails_and_prunes_replaced_ones(
    session: Session, store: LocalStorage, stencil_env: Path
) -> None:
    seeded = seed_batch(session, store, count=3)
    out = stencil_env / "g" / "page.html"
    build_gallery(session=session, batch_id=seeded.batch_id, storage=store, out=out, ttl_s=60)

    again = build_gallery(
        session=session, batch_id=seeded.batch_id, storage=store, out=out, ttl_s=60
    )
    assert (again.thumbs_made, again.thumbs_kept, again.thumbs_pruned) == (0, 3, 0)

    item = session.get(Item, seeded.item_ids[0])
    assert item is not None
    item.review = "rejected"
    control.retry(session=session, request_id=seeded.batch_id, rejected=True)
    item.status = "succeeded"  # as if the worker made the new image
    store.put(item.output_key, b"", "image/png")  # an empty file: unreadable
    session.flush()

    third = build_gallery(
        session=session, batch_id=seeded.batch_id, storage=store, out=out, ttl_s=60
    )
    assert third.thumbs_pruned == 1
    first = _data(out)["items"][0]
    assert first["o"].endswith(".r2.png") and "t" not in first and "unreadable" in first["r"]


def test_not_a_batch(session: Session, store: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a batch id"):
        build_gallery(
            session=session, batch_id="i_x", storage=store, out=tmp_path / "p.html", ttl_s=1
        )
    with pytest.raises(NotFoundError):
        build_gallery(
            session=session, batch_id="b_x", storage=store, out=tmp_path / "p.html", ttl_s=1
        )


def test_upload_to_s3_uses_signed_thumbnail_urls(
    session: Session, s3_bucket: tuple[str, str], tmp_path: Path
) -> None:
    endpoint, bucket = s3_bucket
    store = S3Storage(bucket, "out", endpoint_url=endpoint)
    seeded = seed_batch(session, store, count=3, statuses={1: ("blocked", "safety", "SAFETY")})

    gallery = build_gallery(
        session=session, batch_id=seeded.batch_id, storage=store, out=tmp_path / "p.html",
        ttl_s=600, upload=True,
    )  # fmt: skip

    assert (
        gallery.url is not None and f"/out/_galleries/{seeded.batch_id}/index.html" in gallery.url
    )
    assert store.exists(f"_galleries/{seeded.batch_id}/index.html")
    with urllib.request.urlopen(gallery.url, timeout=10) as response:  # loopback moto endpoint
        assert response.headers["Content-Type"].startswith("text/html")
        page = response.read().decode()
    items = _data(page)["items"]
    assert items[1]["r"] == "safety: SAFETY"
    for item in (items[0], items[2]):
        assert item["t"].startswith(endpoint) and "Signature" in item["t"]
        with urllib.request.urlopen(item["t"], timeout=10) as response:
            assert response.read()[:3] == b"\xff\xd8\xff"
