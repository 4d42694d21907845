"""Chained references at submit: resolved after every row, refused with their place when they
name no item or form a cycle; the CLI exits 2 and writes nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from scheduler.manifest import SubmitOptions, load_plan
from stencil.errors import ManifestError
from stencil.settings import Settings
from tests.cli import cli_json, run_cli
from tests.worker.test_chains import chain_manifest

SETTINGS = Settings(_env_file=None, provider="preview", model="gemini-2.5-flash-image")


def plan_of(path: Path) -> object:
    return load_plan(path, options=SubmitOptions(), settings=SETTINGS, batch_id="b_chain")


def problems_of(path: Path) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(ManifestError) as caught:
        plan_of(path)
    return [(p.row, p.field, p.message) for p in caught.value.problems]


def test_a_chain_resolves_and_dependents_have_a_provisional_fingerprint(tmp_path: Path) -> None:
    rows = [
        {"sku": "hero", "prompt": "hero", "after": ""},
        {"sku": "side", "prompt": "side", "after": "hero"},
        {"sku": "top", "prompt": "side", "after": "hero#1"},
    ]
    plan = load_plan(
        chain_manifest(tmp_path, rows), options=SubmitOptions(), settings=SETTINGS, batch_id="b_c"
    )
    hero, side, top = plan.items
    assert hero.refs == () and side.refs[0].depends_on == ("hero", 1)
    assert top.refs[0].depends_on == ("hero", 1)
    assert side.refs[0].as_json()["depends_on"] == {"key": "hero", "variant": 1}
    assert side.fingerprint == top.fingerprint != hero.fingerprint  # same prompt, same source


def test_a_cycle_and_a_missing_item_are_problems_with_their_place(tmp_path: Path) -> None:
    rows = [
        {"sku": "a", "prompt": "a", "after": "c"},
        {"sku": "b", "prompt": "b", "after": "a"},
        {"sku": "c", "prompt": "c", "after": "b"},
        {"sku": "d", "prompt": "d", "after": "nobody"},
        {"sku": "e", "prompt": "e", "after": "a#2"},
        {"sku": "f", "prompt": "f", "after": "f"},
    ]
    found = problems_of(chain_manifest(tmp_path, rows))
    fld = "template.images[0]"
    assert all(f == fld for _, f, _ in found)
    by_row = {row: message for row, _, message in found}  # inline rows count from 0
    assert set(by_row) == {1, 3, 4, 5}
    assert "'item:a'" in by_row[1] and "cycle: a#1 -> c#1 -> b#1 -> a#1" in by_row[1]
    assert "'item:nobody'" in by_row[3] and "no item of this manifest has the key" in by_row[3]
    assert "no variant 2" in by_row[4]
    assert "cycle: f#1 -> f#1" in by_row[5]


def test_csv_form_takes_item_references_in_image_columns(tmp_path: Path) -> None:
    path = tmp_path / "chain.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "prompt", "image"])
        writer.writerow(["hero", "a hero", ""])
        writer.writerow(["card", "a card", "item:hero"])
        writer.writerow(["bad", "a card", "item:"])
    found = problems_of(path)
    assert found == [
        (4, "image", "the reference 'item:' names no key; write item:KEY or item:KEY#VARIANT")
    ]


def test_the_cli_refuses_a_cycle_with_exit_2_and_writes_nothing(
    stencil_env: Path, tmp_path: Path
) -> None:
    rows = [{"sku": "a", "prompt": "a", "after": "b"}, {"sku": "b", "prompt": "b", "after": "a"}]
    result = run_cli("submit", str(chain_manifest(tmp_path, rows)))
    assert result.returncode == 2
    assert "cycle" in result.stderr and "template.images[0]" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli_json("ls") == []
