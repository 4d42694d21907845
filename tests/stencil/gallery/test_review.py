"""Marks files: the shape is checked, every entry is checked against the batch, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from models.tables import Item
from scheduler import control
from stencil.errors import InputError, NotFoundError
from stencil.review import import_marks, parse_marks, read_marks_file
from stencil.storage.local import LocalStorage
from stencil.views import result_rows
from tests.stencil.gallery.seed import Seeded, seed_batch


def _entry(seeded: Seeded, n: int, mark: str, note: str = "") -> dict[str, Any]:
    return {"request_id": seeded.item_ids[n], "key": f"SKU-{n:05d}", "variant": 1,
            "mark": mark, "note": note}  # fmt: skip


def _write(tmp_path: Path, body: Any) -> Path:
    path = tmp_path / "marks.json"
    path.write_text(json.dumps(body))
    return path


def test_round_trip_records_marks_and_results_show_them(
    session: Session, store: LocalStorage, tmp_path: Path
) -> None:
    seeded = seed_batch(session, store, count=4)
    body = {"batch_id": seeded.batch_id, "marks": [
        _entry(seeded, 0, "approved"), _entry(seeded, 2, "rejected", " too dark "),
    ]}  # fmt: skip

    result = import_marks(session=session, marks_file=read_marks_file(_write(tmp_path, body)))

    assert (result.recorded, result.approved, result.rejected) == (2, 1, 1)
    rows = list(result_rows(session=session, batch_id=seeded.batch_id, storage=store, ttl_s=60))
    assert [(r["review"], r["review_note"]) for r in rows] == [
        ("approved", ""), ("", ""), ("rejected", "too dark"), ("", ""),
    ]  # fmt: skip


def test_retry_rejected_regenerates_only_rejected_items(
    session: Session, store: LocalStorage
) -> None:
    seeded = seed_batch(session, store, count=4, statuses={3: ("failed", "invalid", "bad")})
    body = {"batch_id": seeded.batch_id, "marks": [
        _entry(seeded, 0, "approved"), _entry(seeded, 1, "rejected"), _entry(seeded, 2, "rejected"),
    ]}  # fmt: skip
    import_marks(session=session, marks_file=parse_marks(body))

    result = control.retry(session=session, request_id=seeded.batch_id, rejected=True)

    assert result.changed == 2
    items = [session.get(Item, i) for i in seeded.item_ids]
    assert [i.status for i in items if i] == ["succeeded", "queued", "queued", "failed"]
    assert [i.output_key for i in items if i][:3] == [
        "seeded/00000.png", "seeded/00001.r2.png", "seeded/00002.r2.png",
    ]  # fmt: skip
    assert store.exists("seeded/00001.png")  # the old image is kept


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected an object"),
        ({"batch_id": "b_1", "marks": [], "extra": 1}, "unknown field(s) 'extra'"),
        ({"batch_id": "i_1", "marks": []}, "'batch_id' must be a batch id"),
        ({"batch_id": "b_1", "marks": {}}, "'marks' must be a list"),
        ({"batch_id": "b_1", "marks": ["x"]}, "marks entry 1: expected an object"),
        ({"batch_id": "b_1", "marks": [{"request_id": "b_2", "key": "k", "variant": 1,
          "mark": "approved"}]}, "marks entry 1: 'request_id' must be an item id"),
        ({"batch_id": "b_1", "marks": [{"request_id": "i_2", "key": "k", "variant": 1,
          "mark": "maybe"}]}, "marks entry 1 (i_2): 'mark' must be one of approved, rejected"),
        ({"batch_id": "b_1", "marks": [{"request_id": "i_2", "key": "k", "variant": "1",
          "mark": "approved"}]}, "marks entry 1 (i_2): 'variant' must be an integer"),
        ({"batch_id": "b_1", "marks": [{"request_id": "i_2", "key": "k", "variant": 1,
          "mark": "approved", "note": 3}]}, "'note' must be a string"),
        ({"batch_id": "b_1", "marks": [
            {"request_id": "i_2", "key": "k", "variant": 1, "mark": "approved"},
            {"request_id": "i_2", "key": "k", "variant": 1, "mark": "rejected"}]},
         "marks entry 2: i_2 is marked more than once"),
    ],
)  # fmt: skip
def test_bad_shapes_name_the_problem(body: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_marks(body)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("{nope")
    with pytest.raises(InputError, match="not JSON"):
        read_marks_file(path)
    with pytest.raises(InputError, match="cannot read"):
        read_marks_file(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"request_id": "i_00000000000000000000000000"}, "not an item of batch"),
        ({"key": "SKU-99999"}, "do not match the item's 'SKU-00003'"),
        ({"variant": 2}, "do not match"),
    ],
)
def test_entry_that_does_not_fit_the_batch_writes_nothing(
    session: Session, store: LocalStorage, change: dict[str, Any], message: str
) -> None:
    seeded = seed_batch(session, store, count=4)
    bad = {**_entry(seeded, 3, "rejected"), **change}
    body = {"batch_id": seeded.batch_id, "marks": [_entry(seeded, 0, "approved"), bad]}

    with pytest.raises(InputError) as caught:
        import_marks(session=session, marks_file=parse_marks(body))

    assert "marks entry 2" in str(caught.value) and message in str(caught.value)
    assert all(session.get(Item, i).review is None for i in seeded.item_ids)  # type: ignore[union-attr]


def test_items_of_another_batch_and_items_without_image_are_refused(
    session: Session, store: LocalStorage
) -> None:
    ours = seed_batch(session, store, count=2, statuses={1: ("failed", "invalid", "bad")})
    theirs = seed_batch(session, store, count=1)
    foreign = {**_entry(theirs, 0, "rejected")}

    with pytest.raises(InputError, match="not an item of batch"):
        import_marks(session=session, marks_file=parse_marks(
            {"batch_id": ours.batch_id, "marks": [foreign]}))  # fmt: skip
    with pytest.raises(InputError, match="the item is failed, not succeeded"):
        import_marks(session=session, marks_file=parse_marks(
            {"batch_id": ours.batch_id, "marks": [_entry(ours, 1, "rejected")]}))  # fmt: skip
    with pytest.raises(NotFoundError):
        import_marks(session=session, marks_file=parse_marks({"batch_id": "b_0", "marks": []}))
