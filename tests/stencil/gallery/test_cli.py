"""The commands as a user runs them: `stencil gallery` and `stencil review import`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.db import get_engine, session_scope
from models.schema import ensure_schema
from models.tables import Item
from stencil.storage.local import LocalStorage
from tests.cli import cli_json, run_cli
from tests.stencil.gallery.seed import Seeded, seed_batch

pytestmark = pytest.mark.slow


def _seed(home: Path) -> Seeded:
    ensure_schema(get_engine())
    with session_scope() as session:
        return seed_batch(session, LocalStorage(home / "output"), count=3)


def test_gallery_command_writes_the_default_page(stencil_env: Path) -> None:
    seeded = _seed(stencil_env)

    view = cli_json("gallery", seeded.batch_id)

    page = stencil_env.resolve() / "galleries" / f"{seeded.batch_id}.html"
    assert view["path"] == str(page) and page.is_file()
    assert view["items"] == 3 and view["thumbs_made"] == 3
    text = run_cli("gallery", seeded.batch_id, "-o", str(stencil_env / "x" / "g.html"))
    assert text.returncode == 0 and text.stdout.strip().endswith("g.html")
    assert (stencil_env / "x" / "g_thumbs").is_dir()
    upload = run_cli("gallery", seeded.batch_id, "--upload")
    assert upload.returncode == 2 and "--upload needs S3 storage" in upload.stderr


def test_review_import_bad_entry_exits_2_and_writes_nothing(
    stencil_env: Path, tmp_path: Path
) -> None:
    seeded = _seed(stencil_env)
    marks = [
        {"request_id": seeded.item_ids[0], "key": "SKU-00000", "variant": 1, "mark": "rejected"},
        {"request_id": seeded.item_ids[1], "key": "SKU-00001", "variant": 1, "mark": "nope"},
    ]
    path = tmp_path / "marks.json"
    path.write_text(json.dumps({"batch_id": seeded.batch_id, "marks": marks}))

    bad = run_cli("review", "import", str(path))

    assert bad.returncode == 2
    assert f"marks entry 2 ({seeded.item_ids[1]})" in bad.stderr and "Traceback" not in bad.stderr
    with session_scope() as session:
        assert all(session.get(Item, i).review is None for i in seeded.item_ids)  # type: ignore[union-attr]

    marks[1]["mark"] = "approved"
    path.write_text(json.dumps({"batch_id": seeded.batch_id, "marks": marks}))
    good = cli_json("review", "import", str(path))
    assert good == {"batch_id": seeded.batch_id, "recorded": 2, "approved": 1, "rejected": 1}
