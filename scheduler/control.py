"""Control of batches and items: cancel, pause, resume, retry.

Undispatched work is just rows, so each of these acts at once. Calls already in flight finish
and their paid results are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.queries import batches as batch_queries
from models.queries import chains as chain_queries
from models.queries import items as item_queries
from models.statuses import BatchStatus, ItemStatus, QaState, ReviewMark
from models.tables import Batch, Item
from scheduler.chains import reset_for_rerun
from stencil.errors import InputError, NotFoundError
from stencil.ids import IdKind, kind_of
from worker.checks.config import qa_retryable

RETRYABLE = {
    "failed": ItemStatus.failed,
    "blocked": ItemStatus.blocked,
    "no_image": ItemStatus.no_image,
    "cancelled": ItemStatus.cancelled,
    "budget_exhausted": ItemStatus.budget_exhausted,
}

CANCELLABLE = [ItemStatus.queued.value, ItemStatus.waiting.value, ItemStatus.pending_deps.value]


@dataclass(frozen=True)
class ControlResult:
    request_id: str
    action: str
    changed: int
    status: str


def cancel(*, session: Session, request_id: str) -> ControlResult:
    if kind_of(request_id) is IdKind.item:
        item = _item(session, request_id)
        now = utcnow()
        moved = session.execute(
            update(Item)
            .where(
                Item.id == item.id,
                Item.status.in_(CANCELLABLE),
            )
            .values(status=ItemStatus.cancelled.value, finished_at=now, updated_at=now)
        ).rowcount  # type: ignore[attr-defined]
        session.refresh(item)
        return ControlResult(item.id, "cancel", int(moved), item.status)
    batch = _batch(session, request_id)
    batch_queries.set_status(
        session=session,
        batch_id=batch.id,
        status=BatchStatus.cancelled,
        only_from=[BatchStatus.running, BatchStatus.paused, BatchStatus.stopped],
    )
    changed = batch_queries.end_queued_items(
        session=session, batch_id=batch.id, status=ItemStatus.cancelled
    )
    session.refresh(batch)
    return ControlResult(batch.id, "cancel", changed, batch.status)


def pause(*, session: Session, request_id: str) -> ControlResult:
    batch = _batch(session, request_id)
    moved = batch_queries.set_status(
        session=session,
        batch_id=batch.id,
        status=BatchStatus.paused,
        only_from=[BatchStatus.running],
    )
    session.refresh(batch)
    return ControlResult(batch.id, "pause", int(moved), batch.status)


def resume(*, session: Session, request_id: str) -> ControlResult:
    batch = _batch(session, request_id)
    moved = batch_queries.set_status(
        session=session,
        batch_id=batch.id,
        status=BatchStatus.running,
        only_from=[BatchStatus.paused, BatchStatus.stopped],
        reason="",
    )
    if moved:
        batch.finished_at = None
    session.flush()
    session.refresh(batch)
    return ControlResult(batch.id, "resume", int(moved), batch.status)


def retry(
    *,
    session: Session,
    request_id: str,
    kinds: Iterable[str] = (),
    rejected: bool = False,
    qa_failed: bool = False,
) -> ControlResult:
    """Requeue chosen ended items as new attempts; rejected images, and with ``qa_failed`` those
    that failed their checks (at most ``max_qa_retries`` times each), get a new output key."""
    only_marked = rejected or qa_failed
    chosen = (
        [RETRYABLE[k] for k in kinds]
        if kinds
        else ([] if only_marked else list(RETRYABLE.values()))
    )
    if kind_of(request_id) is IdKind.item:
        item = _item(session, request_id)
        batch = _batch(session, item.batch_id)
        targets = (
            [item]
            if item.status in {s.value for s in chosen}
            or (rejected and item.review == ReviewMark.rejected.value)
            or (qa_failed and _qa_failed(item))
            else []
        )
    else:
        batch = _batch(session, request_id)
        targets = (
            list(
                item_queries.list_items(
                    session=session, batch_id=batch.id, statuses=[s.value for s in chosen]
                )
            )
            if chosen
            else []
        )
        if rejected:
            targets += [
                i
                for i in item_queries.list_items(
                    session=session, batch_id=batch.id, statuses=[ItemStatus.succeeded.value]
                )
                if i.review == ReviewMark.rejected.value
            ]
    if qa_failed and kind_of(request_id) is not IdKind.item:
        held = {t.id for t in targets}
        targets += [
            i
            for i in item_queries.list_items(
                session=session, batch_id=batch.id, statuses=[ItemStatus.succeeded.value]
            )
            if _qa_failed(i) and i.id not in held
        ]
    dependents = chain_queries.ended_dependents(  # chained items re-run with their dependency
        session=session, batch_id=batch.id, item_ids=[t.id for t in targets]
    )
    targets += [d for d in dependents if d.id not in {t.id for t in targets}]
    regenerated = {t.id for t in targets if qa_failed and _qa_failed(t)}
    now = utcnow()
    for item in targets:
        if item.status == ItemStatus.succeeded.value:
            # a reused item points at another item's image: give it a key of its own
            item.output_key = (
                _own_key(item.output_key, item.id)
                if item.reused_from
                else next_output_key(item.output_key)
            )
        item.status = ItemStatus.queued.value
        item.not_before = None
        item.error_kind = item.error_message = None
        item.no_image_count = item.attempts = 0
        item.reused_from = None
        item.review = item.review_note = None
        if item.id in regenerated:  # counted against max_qa_retries
            assert item.checks is not None
            item.checks = {**item.checks, "qa_retries": int(item.checks.get("qa_retries", 0)) + 1}
        item.qa = QaState.pending.value if item.checks else None  # the new image is checked
        item.qa_note = item.qa_hash = None
        item.finished_at = None
        item.updated_at = now
        if item in dependents:
            reset_for_rerun(item)
        elif chain_queries.waits_on(item):  # e.g. cancelled while waiting: wait again
            item.status = ItemStatus.pending_deps.value
    if targets and batch.status in (BatchStatus.done.value, BatchStatus.cancelled.value):
        batch.status = BatchStatus.running.value
    if targets:
        batch.finished_at = None
    session.flush()
    return ControlResult(request_id, "retry", len(targets), batch.status)


def _qa_failed(item: Item) -> bool:
    return (
        item.status == ItemStatus.succeeded.value
        and item.qa == QaState.failed.value
        and qa_retryable(item.checks)
    )


def next_output_key(key: str) -> str:
    """A new key beside the old one (``a/b.png`` -> ``a/b.r2.png``), so the old image is kept."""
    stem, dot, ext = key.rpartition(".")
    if not dot or "/" in ext:
        stem, ext = key, ""
    base, _, number = stem.rpartition(".r")
    if base and number.isdigit():
        stem = f"{base}.r{int(number) + 1}"
    else:
        stem = f"{stem}.r2"
    return f"{stem}.{ext}" if ext else stem


def _own_key(key: str, item_id: str) -> str:
    stem, dot, ext = key.rpartition(".")
    if not dot or "/" in ext:
        return f"{key}.{item_id}"
    return f"{stem}.{item_id}.{ext}"


def _batch(session: Session, request_id: str) -> Batch:
    if kind_of(request_id) is not IdKind.batch:
        raise InputError(f"{request_id!r} is not a batch id (batch ids start with 'b_')")
    batch = batch_queries.get_batch(session=session, batch_id=request_id)
    if batch is None:
        raise NotFoundError(f"no batch has the request id {request_id!r}")
    return batch


def _item(session: Session, request_id: str) -> Item:
    item = item_queries.get_item(session=session, item_id=request_id)
    if item is None:
        raise NotFoundError(f"no item has the request id {request_id!r}")
    return item
