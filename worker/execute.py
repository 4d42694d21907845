"""Run one item: open a fenced attempt, call the provider, store the image, record the result.

The attempt is committed as ``calling`` (with its budget reservation) before the paid call, the
image and its sidecar are written to storage before the result is committed, and the result is
applied only if the attempt still owns the item. A crash anywhere leaves a state the sweeper
can finish from the database and storage without paying twice.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from models.base import utcnow
from models.db import session_scope
from models.queries import attempts as attempt_queries
from models.queries import batches as batch_queries
from models.queries import items as item_queries
from models.queries import twins as twin_queries
from models.statuses import IN_FLIGHT_ITEM, AttemptState, BatchStatus, ItemStatus
from models.tables import Attempt, Batch, Item
from scheduler.chains import settle_after
from scheduler.retry import next_step
from stencil.errors import ConfigError, ObjectMissing, StorageError
from stencil.ids import IdKind, new_id
from stencil.settings import Settings
from stencil.storage.base import Storage
from worker.leases import LeaseKeeper
from worker.providers import Provider
from worker.providers.base import ImageRequest, ImageResult
from worker.refs import RefCache
from worker.sidecar import build_sidecar, image_intact
from worker.spool import Held
from worker.store import (
    REFERENCE_REFUSED,
    STORAGE_REFUSED,
    Target,
    find_held,
    foreign_owner,
    spool_for,
    store,
)

log = logging.getLogger(__name__)
IN_FLIGHT_STATUSES = frozenset(s.value for s in IN_FLIGHT_ITEM)
BUDGET_WAIT_S = 1.0
HANDOFF_MAX = 25  # items one task runs back to back before it lets Celery breathe


class RunOutcome(StrEnum):
    """What ``run_item`` did with a message."""

    skipped = "skipped"  # the item was not dispatched (duplicate message, cancelled, paused)
    deferred = "deferred"  # the batch budget had no room now; back to queued
    recorded = "recorded"  # an attempt ran and its result was recorded
    throttled = "throttled"  # recorded, and the provider asked to slow down (429)
    superseded = "superseded"  # an attempt ran but a newer one owns the item
    reused = "reused"  # an identical item had succeeded: completed by reference, nothing paid
    waiting = "waiting"  # an identical item is being generated: this one waits for its image


@dataclass
class WorkerContext:
    """What a worker process keeps between tasks."""

    settings: Settings
    storage: Storage
    providers: dict[str, Provider]
    refs: RefCache
    leases: LeaseKeeper
    name: str = socket.gethostname()
    stopping: threading.Event = field(default_factory=threading.Event)  # warm shutdown began

    def redact(self, text: str) -> str:
        """Text with every configured credential removed (for messages from unexpected errors)."""
        from worker.providers.classify import make_redactor

        secrets = (
            self.settings.vertex_api_key,
            self.settings.vertex_access_token,
            self.settings.gemini_api_key,
        )
        return make_redactor(s.get_secret_value() for s in secrets if s)(text)

    def provider(self, name: str) -> Provider:
        if name not in self.providers:
            from worker.providers import get_provider

            self.providers[name] = get_provider(name, self.settings)
        return self.providers[name]


HANDS_OFF = frozenset({RunOutcome.recorded, RunOutcome.reused, RunOutcome.waiting})


def run_chain(item_id: str, ctx: WorkerContext) -> list[RunOutcome]:
    """Run an item, then, while the window has room, the next ones handed over directly."""
    from scheduler.dispatch import claim_next

    outcomes: list[RunOutcome] = []
    next_id: str | None = item_id
    while next_id is not None:
        outcome = run_item(next_id, ctx)
        outcomes.append(outcome)
        next_id = None
        keep_going = not ctx.stopping.is_set() and len(outcomes) < HANDOFF_MAX
        if ctx.settings.handoff and outcome in HANDS_OFF and keep_going:
            next_id = claim_next(settings=ctx.settings)
    return outcomes


def run_item(item_id: str, ctx: WorkerContext) -> RunOutcome:
    held = find_held(item_id, ctx.settings)  # paid before, storage refused it: no new call
    opened = _open_attempt(item_id, ctx, held=held is not None)
    if isinstance(opened, RunOutcome):
        return opened
    batch, item, attempt = opened
    ctx.leases.hold(item.id, attempt.id)
    try:
        result = held.result() if held is not None else _call(batch, item, ctx)
        fresh = ctx.leases.surely_held(item.id) or _still_calling(attempt.id)
        if result.state is AttemptState.succeeded and fresh:
            result = _store(batch, item, attempt, result, ctx, held)
        outcome = _record(batch, item, attempt, result, ctx)
        stored = outcome is RunOutcome.recorded and result.state is AttemptState.succeeded
        if held is not None and stored:
            spool_for(ctx.settings).discard(item_id=item.id, attempt_id=held.attempt_id)
        return outcome
    finally:
        ctx.leases.release(item.id)


def _open_attempt(
    item_id: str, ctx: WorkerContext, *, held: bool = False
) -> tuple[Batch, Item, Attempt] | RunOutcome:
    """Take the item, reserve its estimate and commit the attempt as `calling`: three statements
    in one transaction; anything unusual rolls back and is sorted out by :func:`_not_startable`.
    For an image already paid for (``held``) nothing is reserved and no twin is looked for."""
    now = utcnow()
    attempt_id = new_id(IdKind.attempt)
    with session_scope() as session:
        item = item_queries.take_dispatched(
            session=session,
            item_id=item_id,
            attempt_id=attempt_id,
            lease_s=ctx.settings.lease_s,
            now=now,
        )
        batch = None
        reserve = 0 if held or item is None else item.estimate_micros
        if item is not None and held:
            batch = batch_queries.get_batch(session=session, batch_id=item.batch_id)
        elif item is not None:
            batch = batch_queries.reserve_returning(
                session=session, batch_id=item.batch_id, micros=reserve
            )
        if item is not None and batch is not None:
            twin = None if held or item.force else _twin(session, item, ctx)
            if twin is not None:
                session.rollback()  # the reservation is not needed: nothing will be paid
                return _follow_twin(item_id, twin.id)
            attempt = attempt_queries.open_attempt(
                session=session,
                attempt_id=attempt_id,
                item_id=item_id,
                batch_id=batch.id,
                number=item.attempts,
                worker=ctx.name,
                reserved_micros=reserve,
                now=now,
            )
            return batch, item, attempt
        session.rollback()
    return _not_startable(item_id)


def _twin(session: Session, item: Item, ctx: WorkerContext) -> Item | None:
    """A succeeded item of the same fingerprint whose image is still there, or a running one."""
    twin_queries.lock_fingerprint(session=session, fingerprint=item.fingerprint)
    twin = twin_queries.find_twin(session=session, item=item)
    if twin is None or twin.status == ItemStatus.running.value:
        return twin
    intact = image_intact(ctx.storage, output_key=twin.output_key, fingerprint=item.fingerprint)
    return twin if intact else None  # a deleted or replaced image is not handed out again


def _follow_twin(item_id: str, twin_id: str) -> RunOutcome:
    """Complete the item with its twin's image, or let it wait for the running twin. Runs in a
    new transaction that takes the fingerprint lock again and re-reads the twin."""
    now = utcnow()
    with session_scope() as session:
        item = item_queries.get_item(session=session, item_id=item_id)
        if item is None or item.status != ItemStatus.dispatched.value:
            return RunOutcome.skipped
        twin_queries.lock_fingerprint(session=session, fingerprint=item.fingerprint)
        twin = item_queries.get_item(session=session, item_id=twin_id)
        if twin is not None and twin.status == ItemStatus.succeeded.value:
            twin_queries.complete_by_reference(
                session=session, item_id=item_id, source=twin, now=now
            )
            return RunOutcome.reused
        if twin is not None and twin.status in IN_FLIGHT_STATUSES:
            twin_queries.wait_for(session=session, item_id=item_id, source_id=twin.id, now=now)
            return RunOutcome.waiting
        item_queries.release_dispatched(  # the twin moved on meanwhile: try again shortly
            session=session,
            item_id=item_id,
            values={"status": ItemStatus.queued.value, "lease_expires_at": None, "updated_at": now},
        )
    return RunOutcome.deferred


def _not_startable(item_id: str) -> RunOutcome:
    """Why the item could not start, with the item put where it belongs: a duplicate message is
    dropped; a paused or stopped batch takes it back to queued, a cancelled one ends it; when the
    budget has no room now it waits a moment in the queue (the sweeper ends it if it never will)."""
    now = utcnow()
    with session_scope() as session:
        item = item_queries.get_item(session=session, item_id=item_id)
        if item is None or item.status != ItemStatus.dispatched.value:
            return RunOutcome.skipped
        batch = batch_queries.get_batch(session=session, batch_id=item.batch_id)
        running = batch is not None and batch.status == BatchStatus.running.value
        ended = batch is not None and batch.status == BatchStatus.cancelled.value
        item_queries.release_dispatched(
            session=session,
            item_id=item_id,
            values={
                "status": (ItemStatus.cancelled if ended else ItemStatus.queued).value,
                "not_before": now + timedelta(seconds=BUDGET_WAIT_S) if running else None,
                "finished_at": now if ended else None,
                "lease_expires_at": None,
                "updated_at": now,
            },
        )
    return RunOutcome.deferred if running else RunOutcome.skipped


def _call(batch: Batch, item: Item, ctx: WorkerContext) -> ImageResult:
    try:
        refused = foreign_owner(Target(item.output_key, item.id, batch.id))
        if refused is not None:  # known before paying: do not call
            return ImageResult(state=AttemptState.invalid, message=refused)
        refs = ctx.refs.load(item.refs, ctx.storage)
        request = ImageRequest(
            model=batch.model,
            prompt=item.prompt,
            refs=refs,
            aspect_ratio=item.aspect_ratio,
            image_size=item.image_size,
            labels={"stencil-batch": batch.id.lower(), "stencil-item": item.id.lower()},
        )
        return ctx.provider(batch.provider).generate(request)
    except ConfigError as exc:
        return ImageResult(state=AttemptState.auth, message=str(exc))
    except StorageError as exc:  # never sent: a missing or altered reference stops the batch
        if exc.permanent or isinstance(exc, ObjectMissing):
            return ImageResult(
                state=AttemptState.invalid, error_status=REFERENCE_REFUSED, message=str(exc)
            )
        return ImageResult(state=AttemptState.transient, message=f"reference image: {exc}")
    except Exception as exc:  # a bug must not strand the item: record it and retry boundedly
        message = ctx.redact(f"{type(exc).__name__}: {exc}")
        log.warning("provider call failed unexpectedly for %s: %s", item.id, message)
        return ImageResult(state=AttemptState.transient, message=message)


def _still_calling(attempt_id: str) -> bool:
    """False when the sweeper already resolved this attempt (the worker was presumed dead): its
    late image must not overwrite the newer attempt's image and sidecar."""
    with session_scope() as session:
        attempt = attempt_queries.get_attempt(session=session, attempt_id=attempt_id)
        return attempt is not None and attempt.state == AttemptState.calling.value


def _store(
    batch: Batch,
    item: Item,
    attempt: Attempt,
    result: ImageResult,
    ctx: WorkerContext,
    held: Held | None = None,
) -> ImageResult:
    """Write the image, then its sidecar (the sidecar names the paid attempt: it is the commit
    mark), if the item owns its key; what storage will not take waits in the spool."""
    sidecar = held.sidecar if held is not None else None
    if sidecar is None:
        sidecar = build_sidecar(
            batch=batch, item=item, attempt=attempt, result=result, finished_at=utcnow()
        )
    return store(
        storage=ctx.storage,
        spool=spool_for(ctx.settings),
        target=Target(item.output_key, item.id, batch.id),
        attempt_id=attempt.id,
        result=result,
        sidecar=sidecar,
        held=held,
    )


def _record(
    batch: Batch, item: Item, attempt: Attempt, result: ImageResult, ctx: WorkerContext
) -> RunOutcome:
    now = utcnow()
    with session_scope() as session:
        closed = attempt_queries.close_attempt(
            session=session,
            attempt_id=attempt.id,
            values=_attempt_values(result, item, now),
        )
        if not closed:  # the sweeper resolved this attempt already
            return RunOutcome.superseded
        batch_queries.settle_budget(
            session=session,
            batch_id=batch.id,
            reserved=attempt.reserved_micros,
            spent=result.cost_micros,
        )
        no_image_count = item.no_image_count + (result.state is AttemptState.no_image)
        step = next_step(
            result.state,
            attempts=item.attempts,
            no_image_count=no_image_count,
            message=result.reason,
            settings=ctx.settings,
        )
        applied = item_queries.update_fenced(
            session=session,
            item_id=item.id,
            attempt_id=attempt.id,
            values=step.item_columns(result=result, no_image_count=no_image_count, now=now),
        )
        if not applied:
            attempt_queries.set_state(
                session=session, attempt_id=attempt.id, state=AttemptState.superseded
            )
            item_queries.add_cost(session=session, item_id=item.id, micros=result.cost_micros)
            return RunOutcome.superseded
        twin_queries.settle_waiters(session=session, now=now, source_id=item.id)
        settle_after(session, item_id=item.id, image=result.image, storage=ctx.storage, now=now)
        stop_reason = _batch_stop_reason(result)
        if stop_reason:
            batch_queries.set_status(
                session=session,
                batch_id=batch.id,
                status=BatchStatus.stopped,
                only_from=[BatchStatus.running],
                reason=stop_reason,
            )
    if result.state is AttemptState.rate_limited:
        return RunOutcome.throttled
    return RunOutcome.recorded


def _batch_stop_reason(result: ImageResult) -> str | None:
    """Answers that every other item of the batch would get too: stop dispatching, say why."""
    if result.state is AttemptState.auth:
        return f"credentials refused by the provider: {result.reason}"
    if result.state is AttemptState.invalid and result.http_code == 404:
        return f"the model is unknown or retired: {result.reason}"
    if result.error_status == STORAGE_REFUSED:
        return f"storage: {result.message}"
    if result.error_status == REFERENCE_REFUSED:
        return f"reference image: {result.message}"
    return None


def _attempt_values(result: ImageResult, item: Item, now: Any) -> dict[str, Any]:
    return {
        "state": result.state.value,
        "cost_micros": result.cost_micros,
        "prompt_tokens": result.prompt_tokens,
        "output_tokens": result.output_tokens,
        "http_code": result.http_code,
        "error_status": result.error_status,
        "finish_reason": result.finish_reason,
        "message": result.message,
        "model_version": result.model_version,
        "response_id": result.response_id,
        "traffic_type": result.traffic_type,
        "storage_key": item.output_key if result.state is AttemptState.succeeded else None,
        "finished_at": now,
    }
