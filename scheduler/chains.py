"""Chained items at run time: waiting for a dependency, released by it, or ended with it.

An item that uses another item's image (``item:KEY`` in its manifest, scheduler/manifest/chains)
is inserted ``pending_deps``: dispatch claims only ``queued`` items, so it holds no window slot
and no worker while it waits. When a dependency succeeds, the dependent's reference gets the
image's key, type and sha256 (the worker checks the stored bytes against it before sending
them), its fingerprint is computed again with that digest, and once every dependency is in, it
is queued. When a dependency ends without an image, its dependents end ``dependency_failed``,
unpaid, with a reason naming it (and theirs after them).

This runs in the transaction that records the dependency's result (worker/execute.py), at
submit for dependencies reused there, and in the sweeper for whatever those missed (a
dependency completed by a twin, or ended by the sweeper or a budget).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from models.queries import chains as chain_queries
from models.statuses import BatchStatus, ItemStatus
from models.tables import Batch, Item
from scheduler.fingerprint import item_fingerprint
from scheduler.manifest import ItemSpec, Plan
from stencil.errors import StorageError
from stencil.storage.base import Storage

log = logging.getLogger(__name__)
REASON_CHARS = 500


def link_rows(rows: Sequence[dict[str, object]]) -> None:
    """Submit: chained references get their dependency's item id; their items start waiting."""
    ids = {(row["key"], row["variant"]): row["id"] for row in rows}
    for row in rows:
        refs = row["refs"]
        assert isinstance(refs, list)
        waits = False
        for ref in refs:
            target = ref.pop("depends_on", None)
            if target is not None:
                ref["item"] = ids[(target["key"], target["variant"])]
                waits = True
        if waits and row["status"] == ItemStatus.queued.value:
            row["status"] = ItemStatus.pending_deps.value


def settle_after(
    session: Session, *, item_id: str, image: bytes | None, storage: Storage, now: datetime
) -> int:
    """After an item's result is recorded: release or end the items waiting for it."""
    item = session.get(Item, item_id, populate_existing=True)
    if item is None:
        return 0
    digest = hashlib.sha256(image).hexdigest() if image is not None else None
    return _settle(session, [item], storage, now, {item.id: digest} if digest else {})


def settle_batch(session: Session, *, batch_id: str, storage: Storage, now: datetime) -> int:
    """Submit: release what waits on dependencies that were complete at once (reused)."""
    pending = chain_queries.pending_items_of(session=session, batch_id=batch_id)
    return _settle_pending(session, pending, storage, now)


def sweep_chains(session: Session, *, storage: Storage, now: datetime) -> int:
    """The sweeper's safety net: every waiting item whose dependency has ended moves on."""
    return _settle_pending(session, chain_queries.pending_items(session=session), storage, now)


def _settle_pending(
    session: Session, pending: Sequence[Item], storage: Storage, now: datetime
) -> int:
    wanted = {dep for item in pending for dep in chain_queries.waits_on(item)}
    moved = 0
    for dep_id in sorted(wanted):
        dep = session.get(Item, dep_id)
        if dep is None:
            moved += _orphans(session, pending, dep_id, now)
        else:
            moved += _settle(session, [dep], storage, now, {})
    cancelled = BatchStatus.cancelled.value
    for item in pending:
        batch = session.get(Batch, item.batch_id)
        if item.status == ItemStatus.pending_deps.value and batch and batch.status == cancelled:
            _end(item, ItemStatus.cancelled, None, now)
            moved += 1
    return moved


def _settle(
    session: Session, sources: list[Item], storage: Storage, now: datetime, digests: dict[str, str]
) -> int:
    moved = 0
    work = list(sources)
    while work:
        source = work.pop()
        status = ItemStatus(source.status)
        if not status.ended:
            continue
        dependents = chain_queries.pending_dependents(
            session=session, batch_id=source.batch_id, item_id=source.id
        )
        if not dependents:
            continue
        digest = None
        if status is ItemStatus.succeeded:
            digest = digests.get(source.id) or _stored_digest(storage, source)
            if digest is None:
                continue  # storage did not answer: the sweeper tries again
        for dependent in dependents:
            moved += 1
            if digest is not None:
                _release(session, dependent, source, digest, now)
            else:
                _end(dependent, ItemStatus.dependency_failed, _reason(source), now)
                work.append(dependent)
    session.flush()
    return moved


def _release(session: Session, item: Item, source: Item, digest: str, now: datetime) -> None:
    refs = [dict(ref) for ref in item.refs]
    for ref in refs:
        if ref.get("item") == source.id:
            mime = source.content_type or "image/png"
            ref.update(digest=digest, mime=mime, key=source.output_key)
    item.refs = refs
    item.updated_at = now
    if chain_queries.waits_on(item):
        return
    batch = session.get(Batch, item.batch_id)
    assert batch is not None
    item.fingerprint = item_fingerprint(
        provider=batch.provider,
        model=batch.model,
        prompt=item.prompt,
        ref_digests=[ref["digest"] for ref in refs],
        aspect_ratio=item.aspect_ratio,
        image_size=item.image_size,
        variant=item.variant,
        scope=batch.tenant_id,
    )
    item.status = ItemStatus.queued.value
    item.not_before = None


def _end(item: Item, status: ItemStatus, reason: str | None, now: datetime) -> None:
    item.status = status.value
    item.error_kind = status.value if reason else None
    item.error_message = reason
    item.finished_at = now
    item.updated_at = now


def _orphans(session: Session, pending: Sequence[Item], dep_id: str, now: datetime) -> int:
    moved = 0
    for item in pending:
        if item.status == ItemStatus.pending_deps.value and dep_id in chain_queries.waits_on(item):
            reason = f"depends on item {dep_id}, which no longer exists"
            _end(item, ItemStatus.dependency_failed, reason, now)
            moved += 1
    session.flush()
    return moved


def _reason(source: Item) -> str:
    why = f": {source.error_message}" if source.error_message else ""
    text = (
        f"depends on {source.key!r} variant {source.variant} ({source.id}), "
        f"which ended {source.status}{why}"
    )
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def _stored_digest(storage: Storage, item: Item) -> str | None:
    try:
        return hashlib.sha256(storage.get(item.output_key)).hexdigest()
    except StorageError as exc:
        log.warning("chains: the image of %s cannot be read now: %s", item.id, exc)
        return None


def reset_for_rerun(item: Item) -> None:
    """``stencil retry`` of a dependency: the dependent waits for its new image again."""
    refs = [dict(ref) for ref in item.refs]
    for ref in refs:
        if ref.get("item"):
            ref.update(digest=None, mime=None, key=None)
    item.refs = refs
    item.status = ItemStatus.pending_deps.value


def resolve_reused(
    plan: Plan,
    reuse: dict[str, Item],
    storage: Storage,
    find: Callable[[Sequence[ItemSpec]], dict[str, Item]],
) -> None:
    """Submit: a chained item whose dependencies are all reused knows their images already: its
    references get their digests (read from storage, so the fingerprint is of the bytes the
    worker will send) and its final fingerprint, and ``find`` looks for an image to reuse for it
    too, level by level. Items of ``plan`` are replaced in place; ``reuse`` grows."""
    at = {(spec.key, spec.variant): index for index, spec in enumerate(plan.items)}
    digests: dict[str, str | None] = {}  # output key -> sha256 of the stored image
    while True:
        resolved: list[ItemSpec] = []
        for index, spec in enumerate(plan.items):
            refs = list(spec.refs)
            for n, ref in enumerate(refs):
                if ref.depends_on is None or ref.digest:
                    continue
                source = reuse.get(plan.items[at[ref.depends_on]].fingerprint)
                if source is None:
                    break
                if source.output_key not in digests:
                    digests[source.output_key] = _stored_digest(storage, source)
                digest = digests[source.output_key]
                if digest is None:
                    break
                mime = source.content_type or "image/png"
                refs[n] = replace(ref, digest=digest, mime=mime, key=source.output_key)
            else:
                if refs == list(spec.refs):
                    continue
                fingerprint = item_fingerprint(
                    provider=plan.provider,
                    model=plan.model,
                    prompt=spec.prompt,
                    ref_digests=[ref.digest for ref in refs],
                    aspect_ratio=spec.aspect_ratio,
                    image_size=spec.image_size,
                    variant=spec.variant,
                    scope=plan.reuse_scope,
                )
                plan.items[index] = replace(spec, refs=tuple(refs), fingerprint=fingerprint)
                resolved.append(plan.items[index])
        found = find(resolved) if resolved else {}
        reuse.update(found)
        if not found:
            return
