"""One item through the worker: fenced attempts, recovery from storage, no double pay."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import update

from models.base import utcnow
from models.db import session_scope
from models.queries import attempts as attempt_queries
from models.queries import items as item_queries
from models.statuses import AttemptState, ItemStatus
from models.tables import Item
from scheduler.sweeper import sweep
from stencil.storage import open_storage
from tests.worker.conftest import Embedded, GatedProvider
from worker.execute import RunOutcome, run_item
from worker.sidecar import parse_sidecar, sidecar_key


def _expire_lease(item_id: str) -> None:
    with session_scope() as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


def _item(item_id: str) -> Item:
    with session_scope() as session:
        item = item_queries.get_item(session=session, item_id=item_id)
        assert item is not None
        return item


def test_runs_an_item_and_ignores_a_duplicate_message(embedded: Embedded) -> None:
    item_id = embedded.dispatch()[0]
    ctx = embedded.context()
    assert run_item(item_id, ctx) is RunOutcome.recorded
    assert run_item(item_id, ctx) is RunOutcome.skipped  # the broker delivered it twice
    item = _item(item_id)
    assert item.status == ItemStatus.succeeded.value and item.attempts == 1
    stored = parse_sidecar(open_storage(embedded.settings).get(sidecar_key(item.output_key)))
    assert stored["attempt_id"] == item.current_attempt_id


def test_a_zombie_attempt_cannot_overwrite_a_newer_one(embedded: Embedded) -> None:
    item_id = embedded.dispatch()[0]
    gated = GatedProvider()
    outcome: list[RunOutcome] = []
    # A short lease, so that by the time the zombie's call returns it must ask the database.
    zombie_ctx = embedded.context(gated, lease_s=1.0)
    zombie = threading.Thread(target=lambda: outcome.append(run_item(item_id, zombie_ctx)))
    zombie.start()
    assert gated.entered.wait(10)
    first_attempt = _item(item_id).current_attempt_id

    _expire_lease(item_id)  # the worker looks dead: the sweeper takes the item back
    report = sweep(settings=embedded.settings, storage=open_storage(embedded.settings))
    assert report.unknown == 1
    assert _item(item_id).status == ItemStatus.queued.value
    with session_scope() as session:  # make room in the window: end the other dispatched items
        session.execute(
            update(Item).where(Item.id != item_id).values(status=ItemStatus.cancelled.value)
        )
    assert embedded.dispatch() == [item_id]
    assert run_item(item_id, embedded.context()) is RunOutcome.recorded
    newer = _item(item_id)
    assert newer.status == ItemStatus.succeeded.value and newer.current_attempt_id != first_attempt

    time.sleep(0.6)  # more than half the zombie's lease has passed
    gated.release.set()  # the zombie's call finally returns
    zombie.join(10)
    assert outcome == [RunOutcome.superseded]
    item = _item(item_id)
    assert item.current_attempt_id == newer.current_attempt_id
    stored = parse_sidecar(open_storage(embedded.settings).get(sidecar_key(item.output_key)))
    assert stored["attempt_id"] == newer.current_attempt_id  # storage still names the newer one
    with session_scope() as session:
        states = {
            a.id: a.state for a in attempt_queries.attempts_of(session=session, item_id=item_id)
        }
    assert states[first_attempt] == AttemptState.outcome_unknown.value


def test_sweeper_recovers_a_stored_image_without_paying_again(embedded: Embedded) -> None:
    item_id = embedded.dispatch()[0]
    gated = GatedProvider()
    ctx = embedded.context(gated)
    worker = threading.Thread(target=run_item, args=(item_id, ctx), daemon=True)
    worker.start()
    assert gated.entered.wait(10)
    attempt_id = _item(item_id).current_attempt_id
    # The call returns and the image and sidecar reach storage, then the worker dies before it
    # records the result: let the call finish while the database write is held back.
    storage = open_storage(embedded.settings)
    output_key = _item(item_id).output_key
    gated.release.set()
    deadline = utcnow() + timedelta(seconds=10)
    while not storage.exists(sidecar_key(output_key)) and utcnow() < deadline:
        pass
    worker.join(10)
    # Rewind the database to the crash point: attempt still calling, item running, lease gone.
    with session_scope() as session:
        session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(
                status=ItemStatus.running.value,
                current_attempt_id=attempt_id,
                lease_expires_at=utcnow() - timedelta(seconds=1),
                finished_at=None,
            )
        )
        attempt_queries.set_state(
            session=session, attempt_id=attempt_id or "", state=AttemptState.calling
        )
    report = sweep(settings=embedded.settings, storage=storage)
    assert report.recovered == 1 and report.unknown == 0
    item = _item(item_id)
    assert item.status == ItemStatus.succeeded.value
    assert gated.calls == 1  # nothing called again
