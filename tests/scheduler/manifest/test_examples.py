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


def test_badges_example_chains_team_sheets_and_expects_each_name() -> None:
    """The CSV form: two team character sheets (16:9, no references), then six badges, each
    made from the frame, the person's portrait and their team's sheet (``item:sheet-...``),
    whose OCR check expects the person's name (the ``expect_text`` column)."""
    settings = Settings(_env_file=None, provider="preview", model="gemini-2.5-flash-image")
    path = EXAMPLES / "badges/badges.csv"
    plan = load_plan(path, options=SubmitOptions(), settings=settings, batch_id="b_ex")
    sheets = {i.key: i for i in plan.items if i.key.startswith("sheet-")}
    badges = {i.key: i for i in plan.items if not i.key.startswith("sheet-")}
    assert set(sheets) == {"sheet-research", "sheet-systems"} and len(badges) == 6
    assert all(
        not i.refs and i.checks is None and i.aspect_ratio == "16:9" for i in sheets.values()
    )
    assert {i.aspect_ratio for i in badges.values()} == {"3:4"}
    teams = {k: [r.depends_on for r in i.refs if r.depends_on] for k, i in badges.items()}
    assert teams["ada"] == [("sheet-research", 1)] and teams["grace"] == [("sheet-systems", 1)]
    assert all(len(i.refs) == 3 and len(teams[k]) == 1 for k, i in badges.items())
    assert badges["ada"].checks == {"expect_text": "Ada Lovelace"}
    assert badges["margaret"].checks == {"expect_text": "Margaret Hamilton"}
    assert plan.provider == "preview" and plan.warnings == [] and plan.estimated_micros > 0


def test_csv_form_expect_text_is_a_template_with_its_place(tmp_path: Path) -> None:
    from stencil.errors import ManifestError

    path = tmp_path / "cards.csv"
    path.write_text(
        "key,prompt,name,expect_text,checks\n"
        "a,Card for {{ name }},Ana,{{ name }} 5 EUR,\n"
        "b,Card for {{ name }},Bo,,size\n"
        "c,Card for {{ name }},Cy,{{ nope }},\n"
        "d,Card for {{ name }},Di,,text\n"
    )
    settings = Settings(_env_file=None, provider="preview", model="gemini-2.5-flash-image")
    with pytest.raises(ManifestError) as caught:
        load_plan(path, options=SubmitOptions(), settings=settings, batch_id="b_ex")
    assert [(p.row, p.field) for p in caught.value.problems] == [
        (4, "expect_text"),
        (5, "checks"),
    ]
    path.write_text("\n".join(path.read_text().splitlines()[:3]) + "\n")
    plan = load_plan(path, options=SubmitOptions(), settings=settings, batch_id="b_ex")
    assert [i.checks for i in plan.items] == [{"expect_text": "Ana 5 EUR"}, {"size": True}]
