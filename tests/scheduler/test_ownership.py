"""Output key ownership at submit: claim, refuse, version with --force, take over."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from models.db import get_engine, session_scope
from models.schema import ensure_schema
from models.statuses import ItemStatus
from models.tables import Item, OutputKey
from scheduler.manifest import SubmitOptions
from scheduler.ownership import versioned
from scheduler.submit import Submission, submit
from stencil.errors import ManifestError
from stencil.settings import get_settings
from tests.fleet import write_manifest

HERO = "hero/{{ sku }}.png"
ROWS = [{"sku": "a", "prompt": "a red chair"}, {"sku": "b", "prompt": "a blue lamp"}]
CHANGED = [{"sku": "a", "prompt": "a green chair"}, {"sku": "b", "prompt": "a gold lamp"}]


@pytest.mark.parametrize(
    ("key", "number", "expected"),
    [
        ("hero.png", 2, "hero.v2.png"),
        ("a/b", 2, "a/b.v2"),
        ("a.b/c", 3, "a.b/c.v3"),
        ("x/hero.v2.png", 3, "x/hero.v3.png"),
        (".hidden", 2, ".hidden.v2"),
    ],
)
def test_versioned(key: str, number: int, expected: str) -> None:
    assert versioned(key, number) == expected


@pytest.fixture
def home(stencil_env: Path) -> Path:
    ensure_schema(get_engine())
    return stencil_env


def _submit(folder: Path, rows: list[dict[str, str]], *, force: bool = False) -> Submission:
    manifest = write_manifest(folder, rows, output=HERO)
    return submit(manifest, options=SubmitOptions(), settings=get_settings(), force=force)


def _owners() -> dict[str, str]:
    with session_scope() as session:
        return {row.key: row.item_id for row in session.scalars(select(OutputKey))}


def _items(batch_id: str) -> list[Item]:
    with session_scope() as session:
        return list(session.scalars(select(Item).where(Item.batch_id == batch_id)))


def _set_status(batch_id: str, status: ItemStatus) -> None:
    with session_scope() as session:
        session.execute(update(Item).where(Item.batch_id == batch_id).values(status=status.value))


def test_each_new_item_claims_its_key(home: Path, tmp_path: Path) -> None:
    first = _submit(tmp_path / "one", ROWS)

    assert _owners() == {i.output_key: i.id for i in _items(first.batch_id)}


def test_a_key_another_batch_holds_is_a_problem_and_force_versions_it(
    home: Path, tmp_path: Path
) -> None:
    first = _submit(tmp_path / "one", ROWS)

    with pytest.raises(ManifestError) as raised:
        _submit(tmp_path / "two", CHANGED)
    text = str(raised.value)
    assert "'hero/a.png'" in text and first.batch_id in text and "--force" in text
    assert f"stencil cancel {first.batch_id}" in text  # its items are still queued

    forced = _submit(tmp_path / "two", CHANGED, force=True)
    items = _items(forced.batch_id)
    assert sorted(i.output_key for i in items) == ["hero/a.v2.png", "hero/b.v2.png"]
    assert all(i.force for i in items)
    owners = _owners()
    assert owners["hero/a.png"] in {i.id for i in _items(first.batch_id)}
    assert owners["hero/a.v2.png"] in {i.id for i in items}


def test_a_key_whose_owner_ended_without_an_image_moves_to_the_new_item(
    home: Path, tmp_path: Path
) -> None:
    first = _submit(tmp_path / "one", ROWS)
    _set_status(first.batch_id, ItemStatus.failed)

    second = _submit(tmp_path / "two", CHANGED)

    assert _owners() == {i.output_key: i.id for i in _items(second.batch_id)}


def test_a_twin_still_at_work_shares_its_key(home: Path, tmp_path: Path) -> None:
    first = _submit(tmp_path / "one", ROWS)

    second = _submit(tmp_path / "two", ROWS)  # same prompts: the same images

    assert {i.output_key for i in _items(second.batch_id)} == {"hero/a.png", "hero/b.png"}
    assert _owners() == {i.output_key: i.id for i in _items(first.batch_id)}


def test_a_succeeded_owner_whose_image_is_gone_gives_its_key_to_the_same_image(
    home: Path, tmp_path: Path
) -> None:
    first = _submit(tmp_path / "one", ROWS)
    _set_status(first.batch_id, ItemStatus.succeeded)  # as if done; no image in storage

    again = _submit(tmp_path / "two", ROWS)

    assert again.reused == 0  # nothing to hand out
    assert _owners() == {i.output_key: i.id for i in _items(again.batch_id)}
    _set_status(again.batch_id, ItemStatus.succeeded)
    with pytest.raises(ManifestError):  # a different image may not take a succeeded key
        _submit(tmp_path / "three", CHANGED)


def test_a_dry_run_reports_the_problem_too(home: Path, tmp_path: Path) -> None:
    _submit(tmp_path / "one", ROWS)
    manifest = write_manifest(tmp_path / "two", CHANGED, output=HERO)

    with pytest.raises(ManifestError):
        submit(manifest, options=SubmitOptions(), settings=get_settings(), dry_run=True)
