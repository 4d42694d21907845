"""Build a batch's gallery: thumbnails beside the page, then the page itself.

Locally the page lives at ``<data_dir>/galleries/<batch_id>.html`` (or ``-o FILE``) and its
thumbnails in the folder ``<page-stem>_thumbs/`` beside it, referenced by relative URLs. With
``upload`` the thumbnails and a second rendering of the page go to the store under
``_galleries/<batch_id>/``; that page references its thumbnails by signed URLs (valid as long as
the page's own signed URL), because a signed page cannot reach its neighbours by relative URL.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.orm import Session

from models.queries import batches as batch_queries
from models.statuses import ItemStatus
from models.tables import Item
from stencil.catalog import micros_to_usd
from stencil.errors import InputError, NotFoundError
from stencil.gallery.page import Card, render_page
from stencil.gallery.thumbs import WORKERS, Thumb, make_thumbnails, prune
from stencil.ids import IdKind, kind_of
from stencil.storage.base import Storage
from stencil.views import batch_view, iter_items

UPLOAD_PREFIX = "_galleries"
NO_IMAGE_REASON = {
    ItemStatus.queued.value: "waiting to be generated",
    ItemStatus.dispatched.value: "waiting for a worker",
    ItemStatus.running.value: "being generated",
    ItemStatus.cancelled.value: "cancelled before it was generated",
    ItemStatus.budget_exhausted.value: "the batch budget could not cover it",
    ItemStatus.pending_deps.value: "waiting for the image of an item it depends on",
}


@dataclass(frozen=True)
class Gallery:
    """What a build wrote."""

    batch_id: str
    path: Path
    thumbs_dir: Path
    items: int
    thumbs_made: int
    thumbs_kept: int
    thumbs_pruned: int
    seconds: float
    url: str | None = None  # the signed URL of the uploaded page

    def as_json(self) -> dict[str, object]:
        return {
            "batch_id": self.batch_id,
            "path": str(self.path),
            "thumbs_dir": str(self.thumbs_dir),
            "items": self.items,
            "thumbs_made": self.thumbs_made,
            "thumbs_kept": self.thumbs_kept,
            "thumbs_pruned": self.thumbs_pruned,
            "seconds": round(self.seconds, 3),
            "url": self.url,
        }


def default_path(data_dir: Path, batch_id: str) -> Path:
    return (data_dir / "galleries" / f"{batch_id}.html").resolve()


def thumbs_dir_for(page: Path) -> Path:
    return page.with_name(f"{page.stem}_thumbs")


def build_gallery(
    *,
    session: Session,
    batch_id: str,
    storage: Storage,
    out: Path,
    ttl_s: int,
    upload: bool = False,
) -> Gallery:
    """Write the gallery page of a batch to ``out`` (and upload it when asked)."""
    started = time.monotonic()
    if kind_of(batch_id) is not IdKind.batch:
        raise InputError(f"{batch_id!r} is not a batch id (batch ids start with 'b_')")
    batch = batch_queries.get_batch(session=session, batch_id=batch_id)
    if batch is None:
        raise NotFoundError(f"no batch has the request id {batch_id!r}")
    header = batch_view(session, batch, storage=storage, ttl_s=ttl_s)
    items = list(iter_items(session, batch_id))
    out = out.resolve()
    folder = thumbs_dir_for(out)
    done = [i for i in items if i.status == ItemStatus.succeeded.value]
    thumbs = {
        t.item_id: t
        for t in make_thumbnails(
            ((i.id, i.output_key) for i in done), storage=storage, folder=folder
        )
    }
    names = {t.name for t in thumbs.values() if t.name}
    pruned = prune(folder, names)
    generated_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    local_url = f"{quote(folder.name)}/"
    cards = [_card(i, thumbs.get(i.id), local_url, storage=storage, ttl_s=ttl_s) for i in items]
    _write_text(out, render_page(batch=header, cards=cards, generated_at=generated_at))
    url = None
    if upload:
        url = _upload(
            batch_id, header, items, thumbs, folder, storage=storage, ttl_s=ttl_s,
            generated_at=generated_at,
        )  # fmt: skip
    return Gallery(
        batch_id=batch_id,
        path=out,
        thumbs_dir=folder,
        items=len(items),
        thumbs_made=sum(1 for t in thumbs.values() if t.made),
        thumbs_kept=sum(1 for t in thumbs.values() if t.name and not t.made),
        thumbs_pruned=pruned,
        seconds=time.monotonic() - started,
        url=url,
    )


def _card(
    item: Item, thumb: Thumb | None, thumb_base: str, *, storage: Storage, ttl_s: int
) -> Card:
    card = Card(
        request_id=item.id,
        key=item.key,
        variant=item.variant,
        status=item.status,
        cost_usd=micros_to_usd(item.cost_micros),
        prompt=item.prompt,
        version=item.output_key,
        qa=item.qa if item.status == ItemStatus.succeeded.value else None,
        qa_note=item.qa_note,
    )
    if item.status != ItemStatus.succeeded.value:
        return replace(card, reason=_reason(item))
    card = replace(card, image_url=storage.url(item.output_key, ttl_s))
    if thumb is None or thumb.name is None:
        return replace(card, reason=thumb.problem if thumb else "no thumbnail")
    return replace(
        card,
        thumb_url=thumb_base + thumb.name,
        thumb_size=(thumb.width, thumb.height),
        review=item.review,
        review_note=item.review_note,
    )


def _reason(item: Item) -> str:
    if item.error_kind or item.error_message:
        return f"{item.error_kind or 'error'}: {item.error_message or ''}".rstrip(": ")
    return NO_IMAGE_REASON.get(item.status, item.status.replace("_", " "))


def _upload(
    batch_id: str,
    header: dict[str, object],
    items: list[Item],
    thumbs: dict[str, Thumb],
    folder: Path,
    *,
    storage: Storage,
    ttl_s: int,
    generated_at: str,
) -> str:
    """Put thumbnails and a signed-URL rendering of the page under ``_galleries/<batch_id>/``."""
    base = f"{UPLOAD_PREFIX}/{batch_id}"
    names = sorted({t.name for t in thumbs.values() if t.name})

    def put(name: str) -> str:
        key = f"{base}/thumbs/{name}"
        storage.put(key, (folder / name).read_bytes(), "image/jpeg")
        return storage.url(key, ttl_s)

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="upload") as pool:
        signed = dict(zip(names, pool.map(put, names), strict=True))
    cards = []
    for item in items:
        thumb = thumbs.get(item.id)
        card = _card(item, thumb, "", storage=storage, ttl_s=ttl_s)
        if card.thumb_url:
            card = replace(card, thumb_url=signed[card.thumb_url])
        cards.append(card)
    page = render_page(batch=dict(header), cards=cards, generated_at=generated_at)
    key = f"{base}/index.html"
    storage.put(key, page.encode("utf-8"), "text/html; charset=utf-8")
    return storage.url(key, ttl_s)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
