"""Rendering rows into items: context, variants, overrides, options, sandbox, row sources."""

from __future__ import annotations

import json

import pytest

from scheduler.manifest import SubmitOptions
from stencil.catalog import MODELS, estimate_micros, usd_to_micros
from stencil.settings import Settings
from tests.scheduler.manifest.conftest import Folder, only


def test_yaml_with_csv_rows_renders_every_field(folder: Folder) -> None:
    folder.image("refs/style.png")
    folder.image("photos/a.png")
    folder.write(
        "m.yaml",
        """
        version: 1
        name: spring
        key: "{{ sku }}"
        template:
          prompt: |
            Photo of {{ name }} in {{ color }}, row {{ row }}, key {{ key }}, batch {{ batch }}.
          images: [refs/style.png, "{{ photo }}"]
          aspect_ratio: "4:5"
        rows: p.csv
        output: "spring/{{ sku }}/{{ variant }}.png"
        budget_usd: 2.5
        priority: 7
        """,
    )
    folder.write("p.csv", "\ufeffsku,name,color,photo\nA-1,shirt,sand,photos/a.png\n")
    plan = folder.load("m.yaml")
    assert (plan.name, plan.provider, plan.model) == ("spring", "preview", "gemini-2.5-flash-image")
    assert (plan.priority, plan.budget_micros, plan.batch_id) == (7, usd_to_micros(2.5), "b_test")
    [item] = plan.items
    assert item.prompt == "Photo of shirt in sand, row 1, key A-1, batch b_test."
    assert (item.key, item.variant, item.seq) == ("A-1", 1, 0)
    assert item.row_label == "p.csv line 2"
    assert item.output_key == "spring/A-1/1.png"
    assert item.aspect_ratio == "4:5" and item.image_size is None
    assert [ref.source for ref in item.refs] == ["refs/style.png", "photos/a.png"]
    assert item.estimate_micros == estimate_micros(
        "gemini-2.5-flash-image", prompt=item.prompt, ref_count=2, image_size=None
    )
    assert plan.estimated_micros == item.estimate_micros
    assert plan.warnings == []


def test_defaults(folder: Folder) -> None:
    folder.write("m.yaml", "version: 1\nname: t\nkey: k\ntemplate: {prompt: hi}\nrows: [{}]\n")
    plan = folder.load("m.yaml")
    assert (plan.priority, plan.budget_micros) == (0, None)
    assert plan.items[0].output_key == "b_test/k/1.png"
    assert plan.items[0].aspect_ratio is None


def test_settings_choose_model_and_provider(folder: Folder) -> None:
    folder.write("m.yaml", "version: 1\nname: t\nkey: k\ntemplate: {prompt: hi}\nrows: [{}]\n")
    settings = Settings(_env_file=None, model="gemini-3-pro-image", provider="vertex")
    plan = folder.load("m.yaml", settings=settings)
    assert (plan.model, plan.provider) == ("gemini-3-pro-image", "vertex")


def test_variants_make_one_item_each_in_order(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        """
        version: 1
        name: t
        key: "{{ sku }}"
        template: {prompt: "{{ sku }} take {{ variant }}", variants: 3}
        rows: [{sku: a}, {sku: b}]
        """,
    )
    items = folder.load("m.yaml").items
    assert [(i.seq, i.key, i.variant) for i in items] == [
        (0, "a", 1), (1, "a", 2), (2, "a", 3), (3, "b", 1), (4, "b", 2), (5, "b", 3),
    ]  # fmt: skip
    assert [i.prompt for i in items[:2]] == ["a take 1", "a take 2"]
    assert [i.output_key for i in items[:2]] == ["b_test/a/1.png", "b_test/a/2.png"]
    assert len({i.fingerprint for i in items}) == 6


def test_row_overrides_and_empty_cells(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        """
        version: 1
        name: t
        model: gemini-3.1-flash-image
        key: "{{ k }}"
        template: {prompt: "p {{ k }}", aspect_ratio: "1:1", image_size: 1K, variants: 1}
        rows: p.csv
        """,
    )
    folder.write("p.csv", "k,aspect_ratio,image_size,variants\na,16:9,2K,2\nb,,,\n")
    items = folder.load("m.yaml").items
    assert [(i.key, i.aspect_ratio, i.image_size, i.variant) for i in items] == [
        ("a", "16:9", "2K", 1), ("a", "16:9", "2K", 2), ("b", "1:1", "1K", 1),
    ]  # fmt: skip


def test_options_override_the_yaml(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: k\ntemplate: {prompt: hi}\nrows: [{}]\npriority: 2\n",
    )
    options = SubmitOptions(
        name="other", model="gemini-3-pro-image", provider="vertex", budget_usd=1.0,
        output="x/{{ key }}-{{ variant }}.png", priority=9,
    )  # fmt: skip
    plan = folder.load("m.yaml", options=options)
    assert (plan.name, plan.model, plan.provider) == ("other", "gemini-3-pro-image", "vertex")
    assert (plan.priority, plan.budget_micros) == (9, 1_000_000)
    assert plan.items[0].output_key == "x/k-1.png"


def test_unknown_model_is_a_problem_listing_the_known_ids(folder: Folder) -> None:
    folder.write("m.yaml", "version: 1\nname: t\nkey: k\ntemplate: {prompt: hi}\nrows: [{}]\n")
    problems = folder.problems("m.yaml", options=SubmitOptions(model="gemini-9-flash-image"))
    problem = only(problems, lambda p: True)
    assert problem.field == "model" and "'gemini-9-flash-image'" in problem.message
    assert all(known in problem.message for known in MODELS)


def test_csv_form(folder: Folder) -> None:
    folder.image("refs/frame.png")
    folder.image("people/ada.png", b"\x89PNG\r\n\x1a\n ada")
    folder.write(
        "team.csv",
        "key,prompt,image,image_2,aspect_ratio,team\n"
        'ada,"Badge for {{ key }} of {{ team }}",refs/frame.png,people/ada.png,3:4,engines\n'
        "bob,Plain badge,refs/frame.png,,,\n",
    )
    plan = folder.load("team.csv", options=SubmitOptions(priority=3, output="t/{{ key }}.png"))
    assert plan.name == "team" and plan.priority == 3
    ada, bob = plan.items
    assert ada.prompt == "Badge for ada of engines" and ada.aspect_ratio == "3:4"
    assert [r.source for r in ada.refs] == ["refs/frame.png", "people/ada.png"]
    assert bob.prompt == "Plain badge" and bob.aspect_ratio is None
    assert [r.source for r in bob.refs] == ["refs/frame.png"]
    assert (ada.output_key, bob.row_label) == ("t/ada.png", "team.csv line 3")
    assert len(plan.ref_data) == 2


def test_csv_form_name_option(folder: Folder) -> None:
    folder.write("team.csv", "key,prompt\na,hello\n")
    assert folder.load("team.csv", options=SubmitOptions(name="badges")).name == "badges"


def test_jsonl_rows(folder: Folder) -> None:
    rows = [{"sku": "a", "n": 1}, {"sku": "b", "n": 2, "variants": 2}]
    text = json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n"
    folder.write("rows.jsonl", text)
    folder.write(
        "m.yaml",
        'version: 1\nname: t\nkey: "{{ sku }}"\n'
        'template: {prompt: "n={{ n }}"}\nrows: rows.jsonl\n',
    )
    items = folder.load("m.yaml").items
    assert [(i.key, i.prompt, i.variant, i.row_label) for i in items] == [
        ("a", "n=1", 1, "rows.jsonl line 1"),
        ("b", "n=2", 1, "rows.jsonl line 3"),
        ("b", "n=2", 2, "rows.jsonl line 3"),
    ]


def test_jsonl_bad_line(folder: Folder) -> None:
    folder.write("rows.jsonl", '{"sku": "a"}\n[1, 2]\n{oops\n')
    folder.write(
        "m.yaml", "version: 1\nname: t\nkey: '{{ sku }}'\ntemplate: {prompt: x}\nrows: rows.jsonl\n"
    )
    assert [p.row for p in folder.problems("m.yaml")] == [2, 3]


@pytest.mark.parametrize(
    "prompt",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ 'a' * 100000000 }}",
        "{{ 9 ** 9999999 }}",
        "{{ 1 / 0 }}",
    ],
)
def test_sandbox_fails_safely(folder: Folder, prompt: str) -> None:
    folder.write("m.yaml", "version: 1\nname: t\nkey: k\ntemplate: {prompt: x}\nrows: [{}]\n")
    text = (
        (folder.root / "m.yaml").read_text().replace("prompt: x", f"prompt: {json.dumps(prompt)}")
    )
    folder.write("m.yaml", text)
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.prompt" and "template failed" in problem.message
    assert "<class" not in problem.message


def test_jinja_features_work_in_the_sandbox(folder: Folder) -> None:
    prompt = (
        "{{ name | upper }}{% for i in range(2) %}-{{ i }}{% endfor %}"
        "{% if tag is defined %}!{% endif %}"
    )
    folder.write(
        "m.yaml", "version: 1\nname: t\nkey: k\ntemplate: {prompt: x}\nrows: [{name: ab}]\n"
    )
    text = (
        (folder.root / "m.yaml").read_text().replace("prompt: x", f"prompt: {json.dumps(prompt)}")
    )
    folder.write("m.yaml", text)
    assert folder.load("m.yaml").items[0].prompt == "AB-0-1"


def test_inline_row_values_keep_their_types(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: '{{ n }}'\n"
        "template: {prompt: '{{ n + 1 }} {{ ok }} {{ price }}'}\n"
        "rows: [{n: 1, ok: true, price: 2.5}]\n",
    )
    item = folder.load("m.yaml").items[0]
    assert (item.key, item.prompt) == ("1", "2 True 2.5")


def test_list_and_mapping_values_are_problems(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: k\ntemplate: {prompt: '{{ tags }}'}\n"
        "rows: [{tags: [a, b]}, {tags: {a: 1}}]\n",
    )
    problems = folder.problems("m.yaml")
    assert [(p.row, p.field) for p in problems] == [(0, "tags"), (1, "tags")]
    assert "a list of 2 items" in problems[0].message
    assert "a mapping of 1 entries" in problems[1].message
