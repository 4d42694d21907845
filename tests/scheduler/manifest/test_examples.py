"""The worked examples in manifests/ load without problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.manifest import SubmitOptions, load_plan
from stencil.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "manifests"


@pytest.mark.parametrize(
    ("path", "items", "refs_per_item", "ratio"),
    [
        ("catalog/catalog.yaml", 16, 2, "4:5"),
        ("badges/badges.csv", 6, 2, "3:4"),
        ("listings/listings.yaml", 5, 3, "16:9"),
    ],
)
def test_example_loads(path: str, items: int, refs_per_item: int, ratio: str) -> None:
    settings = Settings(_env_file=None, provider="preview", model="gemini-2.5-flash-image")
    plan = load_plan(EXAMPLES / path, options=SubmitOptions(), settings=settings, batch_id="b_ex")
    assert len(plan.items) == items
    assert all(len(item.refs) == refs_per_item for item in plan.items)
    assert {item.aspect_ratio for item in plan.items} == {ratio}
    assert plan.provider == "preview" and plan.warnings == []
    assert plan.estimated_micros > 0
    held = {ref.digest for item in plan.items for ref in item.refs}
    assert set(plan.ref_data) == held
