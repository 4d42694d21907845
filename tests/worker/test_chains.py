"""Chained references on the embedded default (SQLite, local storage, preview images), in-process:
a dependent waits unclaimed until its dependency succeeds, ends with it unpaid, re-runs with it,
and is reused only when the image it depends on is the same."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from models.db import get_engine, session_scope
from models.schema import ensure_schema
from models.statuses import AttemptState, ItemStatus
from models.tables import Attempt, Item
from scheduler import control
from scheduler.fingerprint import item_fingerprint
from scheduler.manifest import SubmitOptions
from scheduler.submit import submit
from scheduler.sweeper import sweep
from stencil.settings import get_settings
from stencil.storage import open_storage
from tests.worker.conftest import Embedded
from worker.execute import RunOutcome, run_item
from worker.providers.base import ImageRequest, ImageResult
from worker.providers.preview import PreviewProvider

SAFETY = "[[SAFETY]]"


class CountingProvider:
    """The preview provider, counting calls per prompt; a prompt with [[SAFETY]] is blocked."""

    name = "preview"

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.refs: dict[str, list[str]] = {}

    def generate(self, request: ImageRequest) -> ImageResult:
        self.calls[request.prompt] += 1
        self.refs[request.prompt] = [ref.digest for ref in request.refs]
        if SAFETY in request.prompt:
            return ImageResult(
                state=AttemptState.blocked, finish_reason="IMAGE_SAFETY", message="refused"
            )
        return PreviewProvider().generate(request)


def chain_manifest(folder: Path, rows: list[dict[str, str]]) -> Path:
    """Rows {sku, prompt, after}: ``after`` names the row whose image this one uses."""
    body: dict[str, Any] = {
        "version": 1,
        "name": "chain",
        "key": "{{ sku }}",
        "template": {
            "prompt": "{{ prompt }}",
            "images": ["{% if after %}item:{{ after }}{% endif %}"],
            "aspect_ratio": "1:1",
        },
        "rows": rows,
        "output": "{{ batch }}/{{ sku }}.png",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def three_levels(product: str, hero_prompt: str | None = None) -> list[dict[str, str]]:
    return [
        {"sku": f"{product}-hero", "prompt": hero_prompt or f"hero of {product}", "after": ""},
        {"sku": f"{product}-angle", "prompt": f"angle of {product}", "after": f"{product}-hero"},
        {"sku": f"{product}-card", "prompt": f"card of {product}", "after": f"{product}-angle"},
    ]


@pytest.fixture
def env(stencil_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STENCIL_WINDOW_INITIAL", "4")
    monkeypatch.setenv("STENCIL_BACKOFF_BASE_S", "0")
    get_settings.cache_clear()
    ensure_schema(get_engine())
    yield


def submitted(tmp_path: Path, rows: list[dict[str, str]], name: str = "m") -> Embedded:
    settings = get_settings()
    sub = submit(chain_manifest(tmp_path / name, rows), options=SubmitOptions(), settings=settings)
    return Embedded(settings=settings, batch_id=sub.batch_id)


def drain(emb: Embedded, provider: CountingProvider) -> list[list[str]]:
    """Dispatch and run until nothing is claimable; the ids claimed by each tick."""
    ctx = emb.context(provider)
    ticks = []
    for _ in range(30):
        ids = emb.dispatch()
        if not ids:
            break
        ticks.append(ids)
        for item_id in ids:
            assert run_item(item_id, ctx) in (RunOutcome.recorded, RunOutcome.reused)
    return ticks


def items_by_key(batch_id: str) -> dict[str, Item]:
    with session_scope() as session:
        rows = session.scalars(select(Item).where(Item.batch_id == batch_id)).all()
        return {item.key: item for item in rows}


def attempts_of(item_id: str) -> list[Attempt]:
    with session_scope() as session:
        return list(session.scalars(select(Attempt).where(Attempt.item_id == item_id)).all())


def test_three_levels_run_in_order_and_waiting_items_are_never_claimed(
    env: None, tmp_path: Path
) -> None:
    emb = submitted(tmp_path, three_levels("p1") + three_levels("p2"))
    before = items_by_key(emb.batch_id)
    assert before["p1-angle"].status == ItemStatus.pending_deps.value
    assert before["p1-card"].status == ItemStatus.pending_deps.value
    provider = CountingProvider()
    ticks = drain(emb, provider)
    keys = {item.id: key for key, item in before.items()}
    # each tick claims one level: a dependent is never claimed with or before its dependency
    assert [sorted(keys[i].split("-")[1] for i in tick) for tick in ticks] == [
        ["hero", "hero"],
        ["angle", "angle"],
        ["card", "card"],
    ]
    after = items_by_key(emb.batch_id)
    assert {item.status for item in after.values()} == {ItemStatus.succeeded.value}
    storage = open_storage(emb.settings)
    for product in ("p1", "p2"):
        for parent, child in (("hero", "angle"), ("angle", "card")):
            dep, item = after[f"{product}-{parent}"], after[f"{product}-{child}"]
            (dep_attempt,) = attempts_of(dep.id)
            (attempt,) = attempts_of(item.id)
            assert dep_attempt.finished_at is not None
            assert attempt.started_at >= dep_attempt.finished_at
            digest = hashlib.sha256(storage.get(dep.output_key)).hexdigest()
            assert item.refs[0]["item"] == dep.id and item.refs[0]["digest"] == digest
            assert provider.refs[item.prompt] == [digest]  # the dependency's image was sent
            assert item.fingerprint == item_fingerprint(
                provider="preview",
                model=emb.settings.model,
                prompt=item.prompt,
                ref_digests=[digest],
                aspect_ratio="1:1",
                image_size=None,
                variant=1,
            )


def test_a_blocked_hero_ends_its_chain_unpaid_and_retry_reruns_it(
    env: None, tmp_path: Path
) -> None:
    emb = submitted(tmp_path, three_levels("p1", f"hero {SAFETY}") + three_levels("p2"))
    provider = CountingProvider()
    drain(emb, provider)
    items = items_by_key(emb.batch_id)
    assert items["p1-hero"].status == ItemStatus.blocked.value
    for key in ("p1-angle", "p1-card"):
        item = items[key]
        assert item.status == ItemStatus.dependency_failed.value
        assert item.cost_micros == 0 and item.attempts == 0 and attempts_of(item.id) == []
        assert item.error_message is not None
    assert "'p1-hero'" in (items["p1-angle"].error_message or "")
    assert "blocked" in (items["p1-angle"].error_message or "")
    assert "'p1-angle'" in (items["p1-card"].error_message or "")
    assert {items[k].status for k in ("p2-hero", "p2-angle", "p2-card")} == {"succeeded"}
    assert provider.calls["angle of p1"] == provider.calls["card of p1"] == 0

    with session_scope() as session:  # retry of the hero alone re-runs its dependents too
        result = control.retry(session=session, request_id=items["p1-hero"].id)
    assert result.changed == 3
    again = items_by_key(emb.batch_id)
    assert again["p1-hero"].status == ItemStatus.queued.value
    assert again["p1-angle"].status == again["p1-card"].status == ItemStatus.pending_deps.value
    with session_scope() as session:  # the user fixed the prompt by hand; the chain runs
        session.get(Item, items["p1-hero"].id).prompt = "hero fixed"  # type: ignore[union-attr]
    drain(emb, provider)
    final = items_by_key(emb.batch_id)
    assert {item.status for item in final.values()} == {ItemStatus.succeeded.value}
    assert provider.calls["angle of p1"] == provider.calls["card of p1"] == 1


def test_a_changed_hero_regenerates_only_its_own_chain(env: None, tmp_path: Path) -> None:
    rows = three_levels("p1") + three_levels("p2")
    first = submitted(tmp_path, rows, "first")
    provider = CountingProvider()
    drain(first, provider)
    assert sum(provider.calls.values()) == 6
    unchanged = submitted(tmp_path, rows, "same")
    assert {i.status for i in items_by_key(unchanged.batch_id).values()} == {"succeeded"}
    assert drain(unchanged, provider) == [] and sum(provider.calls.values()) == 6

    changed = submitted(tmp_path, three_levels("p1", "hero of p1, new") + three_levels("p2"), "c")
    items = items_by_key(changed.batch_id)
    assert {items[k].status for k in ("p2-hero", "p2-angle", "p2-card")} == {"succeeded"}
    assert items["p1-angle"].status == ItemStatus.pending_deps.value
    drain(changed, provider)
    assert provider.calls == Counter(
        {
            "hero of p1": 1,
            "angle of p1": 2,
            "card of p1": 2,
            "hero of p2": 1,
            "angle of p2": 1,
            "card of p2": 1,
            "hero of p1, new": 1,
        }
    )
    assert {i.status for i in items_by_key(changed.batch_id).values()} == {"succeeded"}


def test_an_altered_dependency_image_is_not_sent(env: None, tmp_path: Path) -> None:
    emb = submitted(tmp_path, three_levels("p1")[:2])
    provider = CountingProvider()
    ctx = emb.context(provider)
    (hero_id,) = emb.dispatch()
    assert run_item(hero_id, ctx) is RunOutcome.recorded
    hero = items_by_key(emb.batch_id)["p1-hero"]
    open_storage(emb.settings).put(hero.output_key, b"\x89PNG\r\n\x1a\nnot the image", "image/png")
    (angle_id,) = emb.dispatch()
    run_item(angle_id, ctx)
    angle = items_by_key(emb.batch_id)["p1-angle"]
    assert provider.calls["angle of p1"] == 0  # refused before the call: nothing paid
    assert angle.status == ItemStatus.failed.value
    assert "does not match its digest" in (angle.error_message or "")


def test_the_sweeper_ends_dependents_of_a_cancelled_item_and_cancel_ends_waiting_ones(
    env: None, tmp_path: Path
) -> None:
    emb = submitted(tmp_path, three_levels("p1") + three_levels("p2"))
    items = items_by_key(emb.batch_id)
    with session_scope() as session:
        control.cancel(session=session, request_id=items["p1-hero"].id)
    report = sweep(settings=emb.settings, storage=open_storage(emb.settings))
    assert report.settled == 2
    after = items_by_key(emb.batch_id)
    assert after["p1-angle"].status == after["p1-card"].status == "dependency_failed"
    assert "cancelled" in (after["p1-angle"].error_message or "")
    assert after["p2-angle"].status == ItemStatus.pending_deps.value
    with session_scope() as session:
        control.cancel(session=session, request_id=emb.batch_id)
    final = items_by_key(emb.batch_id)
    assert final["p2-angle"].status == final["p2-card"].status == ItemStatus.cancelled.value


def test_a_dependent_retried_on_its_own_waits_for_its_dependency_again(
    env: None, tmp_path: Path
) -> None:
    emb = submitted(tmp_path, three_levels("p1")[:2])
    with session_scope() as session:
        control.cancel(session=session, request_id=emb.batch_id)
    angle = items_by_key(emb.batch_id)["p1-angle"]
    assert angle.status == ItemStatus.cancelled.value
    with session_scope() as session:
        control.retry(session=session, request_id=emb.batch_id)
    assert items_by_key(emb.batch_id)["p1-angle"].status == ItemStatus.pending_deps.value
    provider = CountingProvider()
    drain(emb, provider)
    assert {i.status for i in items_by_key(emb.batch_id).values()} == {"succeeded"}
    assert provider.calls == Counter({"hero of p1": 1, "angle of p1": 1})
