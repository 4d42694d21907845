"""One item through the worker: fenced attempts, recovery from storage, no double pay."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import update

from models.base import utcnow
from models.db import session_scope
from models.queries import attempts as attempt_queries
from models.queries import batches as batch_queries
from models.queries import items as item_queries
from models.statuses import AttemptState, BatchStatus, ItemStatus
from models.tables import Attempt, Batch, Item, OutputKey
from scheduler import control
from scheduler.sweeper import sweep
from stencil.errors import StorageError
from stencil.storage import open_storage
from stencil.storage.local import LocalStorage
from tests.worker.conftest import Embedded, GatedProvider
from worker import store as store_module
from worker.execute import RunOutcome, run_item
from worker.providers.base import ImageRequest, ImageResult
from worker.providers.preview import PreviewProvider
from worker.sidecar import parse_sidecar, sidecar_key
from worker.store import spool_for


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


# ------------------------------------------------------------------ storing a paid image


class PricedProvider:
    """The provider boundary: a preview image that costs money, with the calls counted."""

    name = "preview"

    def __init__(self, cost_micros: int = 38_700) -> None:
        self.cost_micros = cost_micros
        self.calls = 0

    def generate(self, request: ImageRequest) -> ImageResult:
        self.calls += 1
        result = PreviewProvider().generate(request)
        result.cost_micros = self.cost_micros
        result.preview = False
        return result


class FlakyStorage(LocalStorage):
    """A folder whose first ``failures`` writes fail the way a network store's do."""

    def __init__(self, root: str, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StorageError(f"cannot write {key!r}: connection reset")
        super().put(key, data, content_type)


def _batch(batch_id: str) -> Batch:
    with session_scope() as session:
        batch = batch_queries.get_batch(session=session, batch_id=batch_id)
        assert batch is not None
        return batch


def _attempts(item_id: str) -> list[Attempt]:
    with session_scope() as session:
        return list(attempt_queries.attempts_of(session=session, item_id=item_id))


def _resume(batch_id: str) -> None:
    with session_scope() as session:
        control.resume(session=session, request_id=batch_id)


@pytest.fixture
def no_store_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "STORE_BACKOFF_S", (0.0, 0.0))


def test_a_transient_store_error_is_retried_in_place_not_paid_again(
    embedded: Embedded, no_store_backoff: None
) -> None:
    item_id = embedded.dispatch()[0]
    provider = PricedProvider()
    ctx = embedded.context(provider)
    ctx.storage = FlakyStorage(embedded.settings.resolved_storage_url, failures=2)

    assert run_item(item_id, ctx) is RunOutcome.recorded

    item = _item(item_id)
    assert item.status == ItemStatus.succeeded.value and provider.calls == 1
    assert item.cost_micros == provider.cost_micros
    assert ctx.storage.exists(item.output_key)


def test_a_store_that_stays_down_keeps_the_image_in_the_spool_and_stores_it_later(
    embedded: Embedded, no_store_backoff: None
) -> None:
    item_id = embedded.dispatch()[0]
    provider = PricedProvider()
    ctx = embedded.context(provider)
    ctx.storage = FlakyStorage(embedded.settings.resolved_storage_url, failures=3)

    assert run_item(item_id, ctx) is RunOutcome.recorded
    item = _item(item_id)
    assert item.status == ItemStatus.queued.value and item.error_kind == "unstored"
    assert item.cost_micros == provider.cost_micros  # it was paid, and the ledger says so
    assert _batch(embedded.batch_id).status == BatchStatus.running.value  # transient: no stop
    [paid] = _attempts(item_id)
    assert paid.state == AttemptState.unstored.value and paid.cost_micros == provider.cost_micros

    assert item_id in embedded.dispatch()
    assert run_item(item_id, ctx) is RunOutcome.recorded  # storage works again
    item = _item(item_id)
    assert item.status == ItemStatus.succeeded.value
    assert provider.calls == 1  # stored from the spool: no new call
    assert item.cost_micros == provider.cost_micros
    assert _batch(embedded.batch_id).spent_micros == provider.cost_micros
    sidecar = parse_sidecar(ctx.storage.get(sidecar_key(item.output_key)))
    assert sidecar["attempt_id"] == paid.id  # the sidecar names the attempt that paid
    assert not spool_for(embedded.settings).has_item(item_id)


def test_a_refusing_store_stops_the_batch_and_resume_stores_the_held_image(
    embedded: Embedded,
) -> None:
    item_id = embedded.dispatch()[0]
    root = Path(embedded.settings.resolved_storage_url)
    root.mkdir(parents=True, exist_ok=True)
    blocker = root / embedded.batch_id
    blocker.write_text("a file where the batch's folder should be")  # a real EEXIST/ENOTDIR
    provider = PricedProvider()
    ctx = embedded.context(provider)

    assert run_item(item_id, ctx) is RunOutcome.recorded
    batch = _batch(embedded.batch_id)
    assert batch.status == BatchStatus.stopped.value
    assert batch.stop_reason and batch.stop_reason.startswith(
        "storage: a file stands where a folder is needed"
    )
    assert batch.spent_micros == provider.cost_micros
    item = _item(item_id)
    assert item.status == ItemStatus.queued.value and item.error_kind == "unstored"
    held = spool_for(embedded.settings).held(
        item_id=item_id, attempt_ids=[_attempts(item_id)[0].id]
    )
    assert held is not None

    blocker.unlink()  # the user fixes storage, then resumes
    _resume(embedded.batch_id)
    assert item_id in embedded.dispatch()
    assert run_item(item_id, ctx) is RunOutcome.recorded
    item = _item(item_id)
    assert item.status == ItemStatus.succeeded.value and provider.calls == 1
    assert ctx.storage.get(item.output_key) == held.image
    assert _batch(embedded.batch_id).spent_micros == provider.cost_micros


def test_a_key_owned_by_another_item_is_never_written_nor_paid_for(embedded: Embedded) -> None:
    item_id = embedded.dispatch()[0]
    item = _item(item_id)
    with session_scope() as session:
        other = [i for i in item_queries.list_items(session=session, batch_id=embedded.batch_id)]
        owner = next(i for i in other if i.id != item_id)
        session.execute(
            update(OutputKey)
            .where(OutputKey.key == item.output_key)
            .values(item_id=owner.id, batch_id=owner.batch_id)
        )
    provider = PricedProvider()

    assert run_item(item_id, embedded.context(provider)) is RunOutcome.recorded

    item = _item(item_id)
    assert provider.calls == 0
    assert item.status == ItemStatus.failed.value
    assert f"owned by item {owner.id}" in (item.error_message or "")
    assert not open_storage(embedded.settings).exists(item.output_key)


def test_the_owner_is_checked_again_right_before_writing(embedded: Embedded) -> None:
    item_id = embedded.dispatch()[0]
    gated = GatedProvider()
    ctx = embedded.context(gated)
    worker = threading.Thread(target=run_item, args=(item_id, ctx), daemon=True)
    worker.start()
    assert gated.entered.wait(10)
    item = _item(item_id)
    with session_scope() as session:  # meanwhile another item takes the key
        other = next(
            i
            for i in item_queries.list_items(session=session, batch_id=embedded.batch_id)
            if i.id != item_id
        )
        session.execute(
            update(OutputKey).where(OutputKey.key == item.output_key).values(item_id=other.id)
        )
    gated.release.set()
    worker.join(10)

    item = _item(item_id)
    assert item.status == ItemStatus.failed.value and other.id in (item.error_message or "")
    assert not open_storage(embedded.settings).exists(item.output_key)
    assert spool_for(embedded.settings).has_item(item_id)  # the image is kept, not lost


def test_an_altered_reference_is_never_sent(
    stencil_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.db import get_engine
    from models.schema import ensure_schema
    from scheduler.dispatch import dispatch_tick
    from scheduler.manifest import SubmitOptions
    from scheduler.submit import submit
    from stencil.settings import get_settings
    from tests.fleet import write_manifest

    monkeypatch.setenv("STENCIL_WINDOW_INITIAL", "1")
    get_settings.cache_clear()
    settings = get_settings()
    ensure_schema(get_engine())
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "ref.png").write_bytes(_png((10, 20, 30)))
    manifest = write_manifest(folder, [{"sku": "a", "prompt": "a cat"}])
    text = manifest.read_text().replace(
        "aspect_ratio: '1:1'", "aspect_ratio: '1:1'\n  images: [ref.png]"
    )
    manifest.write_text(text)
    sub = submit(manifest, options=SubmitOptions(), settings=settings)
    storage = open_storage(settings)
    [ref] = sub.plan.items[0].refs
    assert ref.key is not None
    storage.put(ref.key, _png((200, 0, 0)), "image/png")  # replaced behind Stencil's back

    sent: list[str] = []
    dispatch_tick(settings=settings, send=sent.extend)
    provider = PricedProvider()
    ctx = Embedded(settings=settings, batch_id=sub.batch_id).context(provider)
    assert run_item(sent[0], ctx) is RunOutcome.recorded

    assert provider.calls == 0
    item = _item(sent[0])
    assert item.status == ItemStatus.failed.value
    assert "does not match its digest" in (item.error_message or "")
    batch = _batch(sub.batch_id)
    assert batch.status == BatchStatus.stopped.value
    assert (batch.stop_reason or "").startswith("reference image:")

    submit(manifest, options=SubmitOptions(), settings=settings)  # submitting again restores it
    assert hashlib.sha256(storage.get(ref.key)).hexdigest() == ref.digest


def _png(color: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (8, 8), color)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_an_image_kept_by_a_worker_that_died_before_recording_is_not_paid_again(
    embedded: Embedded, no_store_backoff: None
) -> None:
    item_id = embedded.dispatch()[0]
    provider = PricedProvider()
    ctx = embedded.context(provider)
    ctx.storage = FlakyStorage(embedded.settings.resolved_storage_url, failures=3)
    assert run_item(item_id, ctx) is RunOutcome.recorded  # the image went to the spool
    [paid] = _attempts(item_id)
    with session_scope() as session:  # as the sweeper records a worker that died mid-attempt
        attempt_queries.set_state(
            session=session, attempt_id=paid.id, state=AttemptState.outcome_unknown
        )

    assert item_id in embedded.dispatch()
    assert run_item(item_id, ctx) is RunOutcome.recorded

    assert _item(item_id).status == ItemStatus.succeeded.value and provider.calls == 1
