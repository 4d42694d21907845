"""The sweeper repairs what the happy path can lose.

- an item dispatched whose message never reached a worker: back to queued when its lease expires;
- an item running whose worker died: its attempt is resolved from storage (the sidecar names the
  attempt: image there means succeeded and nothing is paid again; otherwise ``outcome_unknown``,
  the reservation stays in the ledger as spent, and the item is retried);
- a batch whose budget cannot cover its next item: remaining items end ``budget_exhausted``;
- a batch whose last item ended: closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from models.base import utcnow
from models.db import session_scope
from models.queries import attempts as attempt_queries
from models.queries import batches as batch_queries
from models.queries import items as item_queries
from models.queries import twins as twin_queries
from models.statuses import AttemptState, BatchStatus, ItemStatus
from models.tables import Item
from scheduler.chains import sweep_chains
from scheduler.retry import next_step
from stencil.errors import StorageError
from stencil.settings import Settings
from stencil.storage.base import Storage
from worker.providers.base import ImageResult
from worker.providers.finalise import MAX_OUTPUT_TOKENS, MAX_PROMPT_TOKENS
from worker.sidecar import parse_sidecar, sidecar_key

log = logging.getLogger(__name__)
RECOVERABLE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
MAX_RECOVERED_COST_MICROS = 1_000_000_000  # $1,000: no single image call costs more


@dataclass
class SweepReport:
    requeued: int = 0
    recovered: int = 0
    unknown: int = 0
    exhausted: int = 0
    settled: int = 0  # waiting items whose twin ended (or stopped being worked on)
    failed: list[str] = field(default_factory=list)  # items whose repair failed (logged, skipped)
    closed: list[str] = field(default_factory=list)


def sweep(*, settings: Settings, storage: Storage) -> SweepReport:
    report = SweepReport()
    now = utcnow()
    with session_scope() as session:
        for item in item_queries.expired_leases(session=session, now=now):
            _expire_isolated(session, item, settings, storage, report)
    with session_scope() as session:
        report.settled = _settle_waiters(session, now)
        report.settled += sweep_chains(session, storage=storage, now=now)  # chained items
    with session_scope() as session:
        for batch in batch_queries.open_batches(session=session):
            if batch.status == BatchStatus.running.value and batch.budget_micros is not None:
                report.exhausted += _exhaust_budget(session, batch.id, batch.budget_micros)
            if batch_queries.close_if_finished(session=session, batch_id=batch.id, now=now):
                report.closed.append(batch.id)
    return report


def _settle_waiters(session: Session, now: datetime) -> int:
    """Waiting items whose twin ended get its image or go back to the queue; so do the few
    whose twin is gone."""
    moved = twin_queries.settle_waiters(session=session, now=now)
    for item_id in twin_queries.orphan_waiters(session=session):
        moved += twin_queries.requeue_waiter(session=session, item_id=item_id, now=now)
    return moved


def _expire_isolated(
    session: Session, item: Item, settings: Settings, storage: Storage, report: SweepReport
) -> None:
    """Repair one item in a savepoint: if it fails (a value the database refuses, say), it is
    logged with the item id and skipped, and the other items are still repaired."""
    item_id = item.id
    try:
        with session.begin_nested():
            _expire(session, item, settings, storage, report)
    except Exception as exc:
        report.failed.append(item_id)
        reason = (str(exc).splitlines() or [""])[0][:300]
        log.warning("sweeper: item %s could not be repaired, skipped: %s", item_id, reason)


def _expire(
    session: Session, item: Item, settings: Settings, storage: Storage, report: SweepReport
) -> None:
    now = utcnow()
    if item.status == ItemStatus.dispatched.value:
        item_queries.release_dispatched(
            session=session,
            item_id=item.id,
            values={"status": ItemStatus.queued.value, "lease_expires_at": None, "updated_at": now},
        )
        report.requeued += 1
        return
    attempt_id = item.current_attempt_id
    attempt = (
        attempt_queries.get_attempt(session=session, attempt_id=attempt_id) if attempt_id else None
    )
    if attempt is None or attempt.state != AttemptState.calling.value:
        item_queries.update_fenced(
            session=session,
            item_id=item.id,
            attempt_id=attempt_id or "",
            values={"status": ItemStatus.queued.value, "lease_expires_at": None, "updated_at": now},
        )
        report.requeued += 1
        return
    result = _result_from_storage(item, attempt.id, storage)
    if result is None:
        result = ImageResult(
            state=AttemptState.outcome_unknown,
            cost_micros=attempt.reserved_micros,
            message="the worker stopped during the call and no image was stored",
        )
        report.unknown += 1
    else:
        report.recovered += 1
    attempt_queries.close_attempt(
        session=session,
        attempt_id=attempt.id,
        values={
            "state": result.state.value,
            "cost_micros": result.cost_micros,
            "prompt_tokens": result.prompt_tokens,
            "output_tokens": result.output_tokens,
            "message": result.message,
            "storage_key": item.output_key if result.state is AttemptState.succeeded else None,
            "finished_at": now,
        },
    )
    batch_queries.settle_budget(
        session=session,
        batch_id=item.batch_id,
        reserved=attempt.reserved_micros,
        spent=result.cost_micros,
    )
    step = next_step(
        result.state,
        attempts=item.attempts,
        no_image_count=item.no_image_count,
        message=result.reason,
        settings=settings,
    )
    item_queries.update_fenced(
        session=session,
        item_id=item.id,
        attempt_id=attempt.id,
        values=step.item_columns(result=result, no_image_count=item.no_image_count, now=now),
    )


def _result_from_storage(item: Item, attempt_id: str, storage: Storage) -> ImageResult | None:
    """The attempt's result if its image and sidecar made it to storage."""
    try:
        sidecar = parse_sidecar(storage.get(sidecar_key(item.output_key)))
        if sidecar.get("attempt_id") != attempt_id or not storage.exists(item.output_key):
            return None
    except (StorageError, ValueError):
        return None
    try:  # the sidecar is data from storage: bounded before it reaches the record
        tokens = sidecar.get("tokens") or {}
        prompt_tokens = int(tokens.get("prompt", 0))
        output_tokens = int(tokens.get("output", 0))
        cost = int(sidecar.get("cost_micros", 0))
    except (AttributeError, TypeError, ValueError, OverflowError):
        return None
    mime = sidecar.get("content_type") or "image/png"
    if (
        mime not in RECOVERABLE_TYPES
        or not 0 <= prompt_tokens <= MAX_PROMPT_TOKENS
        or not 0 <= output_tokens <= MAX_OUTPUT_TOKENS
        or not 0 <= cost <= MAX_RECOVERED_COST_MICROS
    ):
        return None
    return ImageResult(
        state=AttemptState.succeeded,
        mime=mime,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        cost_micros=cost,
        message="recovered from storage after the worker stopped",
    )


def _exhaust_budget(session: Session, batch_id: str, budget: int) -> int:
    """End queued items when nothing is in flight and the cheapest no longer fits."""
    if item_queries.count_in_flight_for(session=session, batch_id=batch_id):
        return 0
    cheapest = item_queries.cheapest_queued(session=session, batch_id=batch_id)
    batch = batch_queries.get_batch(session=session, batch_id=batch_id)
    if cheapest is None or batch is None:
        return 0
    if batch.spent_micros + batch.reserved_micros + cheapest <= budget:
        return 0
    return batch_queries.end_queued_items(
        session=session,
        batch_id=batch_id,
        status=ItemStatus.budget_exhausted,
        message=f"the batch budget of ${budget / 1e6:.2f} cannot cover this item",
    )
