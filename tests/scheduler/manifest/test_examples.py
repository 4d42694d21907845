"""The worked examples in manifests/ load without problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.manifest import SubmitOptions, load_plan
from stencil.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[3] / "manifests"


@pytest.mark.parametrize(
    ("path", "items", "refs_per_item", "ratio", "chained"),
    [
        ("catalog/catalog.yaml", 16, 2, "4:5", True),  # variant 2 also uses the hero (variant 1)
        ("badges/badges.csv", 6, 2, "3:4", False),
        ("listings/listings.yaml", 5, 3, "16:9", False),
    ],
)
def test_example_loads(
    path: str, items: int, refs_per_item: int, ratio: str, chained: bool
) -> None:
    settings = Settings(_env_file=None, provider="preview", model="gemini-2.5-flash-image")
    plan = load_plan(EXAMPLES / path, options=SubmitOptions(), settings=settings, batch_id="b_ex")
    assert len(plan.items) == items
    for item in plan.items:
        hero = chained and item.variant > 1
        assert len(item.refs) == refs_per_item + hero
        assert [ref.depends_on for ref in item.refs if ref.depends_on] == (
            [(item.key, 1)] if hero else []
        )
    assert {item.aspect_ratio for item in plan.items} == {ratio}
    assert plan.provider == "preview" and plan.warnings == []
    assert plan.estimated_micros > 0
    held = {ref.digest for item in plan.items for ref in item.refs if ref.depends_on is None}
    assert set(plan.ref_data) == held
