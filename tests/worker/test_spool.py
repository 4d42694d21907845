"""The spool keeps paid images whole until storage takes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.statuses import AttemptState
from worker.spool import Spool

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
SIDECAR = json.dumps({"attempt_id": "a_paid", "model_version": "v1", "preview": False}).encode()


def test_keep_then_held_gives_the_same_bytes_and_no_new_cost(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert not spool.has_item("i_1")

    spool.keep(item_id="i_1", attempt_id="a_paid", image=PNG, mime="image/png", sidecar=SIDECAR)

    assert spool.has_item("i_1")
    held = spool.held(item_id="i_1", attempt_ids=["a_other", "a_paid"])
    assert held is not None and held.attempt_id == "a_paid"
    assert held.image == PNG and held.sidecar == SIDECAR and held.mime == "image/png"
    result = held.result()
    assert result.state is AttemptState.succeeded and result.cost_micros == 0
    assert result.model_version == "v1" and "a_paid" in (result.message or "")
    assert not list((tmp_path / "spool").rglob("*.tmp"))


def test_a_damaged_image_is_not_used(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.keep(item_id="i_1", attempt_id="a_1", image=PNG, mime="image/png", sidecar=SIDECAR)
    path.write_bytes(PNG[:-1])

    assert spool.held(item_id="i_1", attempt_ids=["a_1"]) is None


def test_discard_removes_the_files_and_the_empty_folder(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.keep(item_id="i_1", attempt_id="a_1", image=PNG, mime="image/png", sidecar=SIDECAR)

    spool.discard(item_id="i_1", attempt_id="a_1")

    assert not spool.has_item("i_1") and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "i_1\x00"])
def test_ids_cannot_leave_the_spool(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        Spool(tmp_path).keep(item_id=bad, attempt_id="a", image=PNG, mime="image/png", sidecar=b"")
