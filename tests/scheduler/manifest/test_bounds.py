"""Bounded input: templates, YAML, JSON rows, values and keys that would exhaust time, memory or
the record end as problems with their place."""

from __future__ import annotations

import json

import pytest

from models.tables import Batch, Item
from scheduler.manifest import SubmitOptions
from scheduler.manifest.budget import MAX_STEPS
from scheduler.manifest.keys import KeySpace
from scheduler.manifest.limits import column_length
from scheduler.manifest.problems import KEPT_PROBLEMS
from stencil.catalog import MODELS
from tests.scheduler.manifest.conftest import Folder, only
from worker.providers import PROVIDERS

ONE_ROW = "version: 1\nname: t\nkey: k\ntemplate: {prompt: x}\nrows: [{}]\n"


def with_prompt(folder: Folder, prompt: str) -> None:
    folder.write("m.yaml", ONE_ROW.replace("prompt: x", f"prompt: {json.dumps(prompt)}"))


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         f"more than {MAX_STEPS:,} steps"),
        ("{% set x = [0] * 100000 %}{% for a in x %}{% for b in x %}{% endfor %}{% endfor %}",
         "steps"),
        ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
         "steps"),
        ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}"
         "{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "more than 1,000,000 characters"),
        ("{% set x %}{% for i in range(90000) %}" + "y" * 1000 + "{% endfor %}{% endset %}"
         "{{ x | length }}", "more than 1,000,000 characters"),
        ("{{ 'x' | center(1000000000) }}", "wider than"),
        ("{{ 'x'.ljust(10 ** 9) }}", "wider than"),
        ("{{ ('x' * 100000) | replace('x', 'y' * 100000) }}", "replace would build"),
        ("{{ ('x' * 100000) | join('y' * 1000) }}", "join would build"),
        ("{% set a = 'x' * 100000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
         "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{{ c }}", "characters"),
        ("{{ '%999999999d' % 1 }}", "wider than"),
        ("{{ '{:{}}'.format(1, 999999999) }}", "wider than"),
        ("{{ ('x ' * 100000) | wordwrap(1, wrapstring='y' * 1000) }}", "wordwrap would build"),
        ("{{ [1] | batch(1000000000, 0) | list }}", "items"),
        ("{{ (2 ** 4000) * (2 ** 4000) }}", "bits"),
        ("{% set x = [] %}{{ x.append(1) }}", "unsafe"),
    ],
)  # fmt: skip
def test_runaway_templates_end_in_a_problem(folder: Folder, prompt: str, words: str) -> None:
    with_prompt(folder, prompt)
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert (problem.row, problem.field) == (0, "template.prompt")
    assert "template failed" in problem.message and words in problem.message


def test_lipsum_is_not_offered(folder: Folder) -> None:
    with_prompt(folder, "{{ lipsum(1000000) }}")
    assert "'lipsum'" in only(folder.problems("m.yaml"), lambda p: True).message


def test_a_prompt_longer_than_the_model_takes(folder: Folder) -> None:
    with_prompt(folder, "{% for i in range(100000) %}" + "x" * 1000 + "{% endfor %}")
    problem = only(folder.problems("m.yaml"), lambda p: True)
    limit = MODELS["gemini-2.5-flash-image"].max_prompt_chars
    assert problem.field == "template.prompt"
    assert f"more than {limit:,} characters" in problem.message
    assert "gemini-2.5-flash-image takes prompts of at most" in problem.message


def test_ordinary_jinja_still_works(folder: Folder) -> None:
    with_prompt(
        folder,
        "{{ range(3) | join(',') }} {{ range(5) | length }} {{ '{:>4}|{:.1f}'.format('a', 2.25) }} "
        "{{ '%03d' % 7 }} {% for x in ['a', 'b'] %}{{ loop.index }}/{{ loop.length }}{% endfor %} "
        "{{ 'a-b' | replace('-', '+') }} {{ 'ab' * 2 }} {{ 2 ** 10 }}",
    )
    prompt = folder.load("m.yaml").items[0].prompt
    assert prompt == "0,1,2 5    a|2.2 007 1/22/2 a+b abab 1024"


@pytest.mark.parametrize(
    ("text", "row", "field", "words"),
    [
        ("version: 1\nbudget_usd: 1\nname: t\nbudget_usd: 500\n", 4, "budget_usd",
         "duplicate key 'budget_usd' (first on line 2)"),
        ("version: 1\ntemplate: {prompt: a, prompt: b}\n", 2, None, "duplicate key 'prompt'"),
        ("version: 1\nname: " + "[" * 500 + "]" * 500 + "\n", 2, None, "nesting is deeper"),
        ("version: 1\nname: &a [*a]\n", 2, None, "inside its own anchor"),
        ("x: 1" + "0" * 5000 + "\n", None, None, "invalid YAML"),
    ],
)  # fmt: skip
def test_yaml_problems(
    folder: Folder, text: str, row: int | None, field: str | None, words: str
) -> None:
    folder.write("m.yaml", text)
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert (problem.row, problem.field) == (row, field) and words in problem.message


def test_yaml_alias_bomb_is_refused(folder: Folder) -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    folder.write("m.yaml", "\n".join(lines) + "\nname: *i\n")
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert "alias bomb" in problem.message and problem.row is not None


def test_yaml_merge_keys_may_be_overridden(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: '{{ k }}'\ntemplate: {prompt: '{{ c }}'}\n"
        "rows: [&base {c: red, k: a}, {<<: *base, k: b, c: blue}]\n",
    )
    assert [(i.key, i.prompt) for i in folder.load("m.yaml").items] == [("a", "red"), ("b", "blue")]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"sku": "a", "sku": "b"}', "duplicate key 'sku'"),
        ('{"sku": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
        ('{"sku": "\\ud800"}', "lone surrogate"),
        ('{"sku": 1' + "0" * 5000 + "}", "invalid JSON"),
    ],
)
def test_jsonl_problems(folder: Folder, line: str, words: str) -> None:
    folder.write("rows.jsonl", '{"sku": "ok"}\n' + line + "\n")
    folder.write(
        "m.yaml", "version: 1\nname: t\nkey: '{{ sku }}'\ntemplate: {prompt: x}\nrows: rows.jsonl\n"
    )
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.file.endswith("rows.jsonl") and problem.row == 2
    assert words in problem.message


@pytest.mark.parametrize("column", ["batch", "row", "variant"])
def test_a_column_shadowing_stencils_names(folder: Folder, column: str) -> None:
    folder.write("p.csv", f"key,prompt,{column}\na,hello,mine\n")
    problem = only(folder.problems("p.csv"), lambda p: True)
    assert (problem.row, problem.field) == (2, column)
    assert "would be replaced by Stencil's own" in problem.message


def test_a_key_column_is_fine_when_it_is_the_key(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: '{{ key }}'\ntemplate: {prompt: '{{ key }}'}\n"
        "rows: [{key: ' a '}]\n",
    )
    assert folder.load("m.yaml").items[0].prompt == "a"
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: '{{ sku }}'\ntemplate: {prompt: '{{ key }}'}\n"
        "rows: [{sku: a, key: other}]\n",
    )
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "key" and "'other'" in problem.message


@pytest.mark.parametrize("value", ["1.0e+13", ".inf", ".nan", "-1", "100001"])
def test_budget_limits(folder: Folder, value: str) -> None:
    folder.write("m.yaml", ONE_ROW + f"budget_usd: {value}\n")
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "budget_usd" and "budget_usd" in problem.message


def test_budget_option_is_checked_too(folder: Folder) -> None:
    folder.write("m.yaml", ONE_ROW)
    problems = folder.problems("m.yaml", options=SubmitOptions(budget_usd=1e13))
    assert "maximum of $100,000" in only(problems, lambda p: True).message


def test_explicit_name_longer_than_the_record_is_a_problem(folder: Folder) -> None:
    folder.write("m.yaml", ONE_ROW.replace("name: t", "name: " + "n" * 300))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "name" and "300 characters long; at most 200" in problem.message


def test_catalog_values_fit_the_record() -> None:
    model_chars = column_length(Batch.__table__.c.model)
    ratio_chars = column_length(Item.__table__.c.aspect_ratio)
    size_chars = column_length(Item.__table__.c.image_size)
    assert model_chars and ratio_chars and size_chars
    for spec in MODELS.values():
        assert len(spec.name) <= model_chars
        assert all(len(ratio) <= ratio_chars for ratio in spec.aspect_ratios)
        assert all(len(size) <= size_chars for size in spec.image_sizes)
    provider_chars = column_length(Batch.__table__.c.provider)
    assert provider_chars and all(len(name) <= provider_chars for name in PROVIDERS)


def test_a_long_csv_file_name_is_cut_to_fit(folder: Folder) -> None:
    name = "c" * 250 + ".csv"
    folder.write(name, "key,prompt\na,hello\n")
    plan = folder.load(name)
    assert len(plan.name) == 200 and plan.name.endswith("...")
    assert len(plan.items[0].row_label) <= 200 and plan.items[0].row_label.endswith(" line 2")


@pytest.mark.parametrize(
    ("prompt", "words"), [('"a\\0b"', "NUL character"), ('"a\\ud800"', "lone surrogate")]
)
def test_text_the_record_cannot_store(folder: Folder, prompt: str, words: str) -> None:
    folder.write("m.yaml", ONE_ROW.replace("prompt: x", f"prompt: {prompt}"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.prompt" and words in problem.message


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ('"a\\x1b]0;owned\\x07"', "control characters"),
        ('"a\\u202eb"', "bidirectional"),
        ('"a\\nb"', "control characters"),
        ("'" + "k" * 600 + "'", "more than 512 characters"),
    ],
)
def test_row_keys_are_refused(folder: Folder, key: str, words: str) -> None:
    folder.write("m.yaml", ONE_ROW.replace("key: k", f"key: {key}"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "key" and words in problem.message


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("_refs/{{ key }}.png", "Stencil's own"),
        ("_galleries/x/{{ key }}.png", "Stencil's own"),
        ("out/{{ key }}.png.json", "sidecar"),
        ("out/{{ key }}.JSON", "sidecar"),
        ("out/.{{ key }}.png", "starting with '.'"),
        ("out/\u202e{{ key }}.png", "bidirectional"),
        ("out/" + "s" * 201 + "/{{ key }}.png", "segment longer than 200"),
    ],
)
def test_output_keys_are_refused(folder: Folder, output: str, words: str) -> None:
    folder.write("m.yaml", ONE_ROW + f"output: {json.dumps(output)}\n")
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "output" and words in problem.message


def test_output_keys_that_are_folders_of_each_other(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        "version: 1\nname: t\nkey: '{{ k }}'\ntemplate: {prompt: x}\noutput: '{{ o }}'\n"
        "rows: [{k: a, o: x}, {k: b, o: x/1.png}, {k: c, o: y/1.png}, {k: d, o: y}]\n",
    )
    problems = folder.problems("m.yaml")
    assert [(p.row, p.field) for p in problems] == [(1, "output"), (3, "output")]
    assert "inside 'x'" in problems[0].message and "rows[0]" in problems[0].message
    assert "is a folder of rows[2]" in problems[1].message


def test_key_space_counts_sidecars() -> None:
    space = KeySpace()
    assert space.claim("a", "first") is None
    assert "inside 'a.json'" in (space.claim("a.json/b.png", "second") or "")
    assert "duplicate" in (space.claim("a", "third") or "")


def test_problems_are_counted_past_the_kept_ones(folder: Folder) -> None:
    rows = "".join(f"x{i},\n" for i in range(KEPT_PROBLEMS + 20))
    folder.write("p.csv", "key,prompt\n" + rows)
    problems = folder.problems("p.csv")
    assert len(problems) == KEPT_PROBLEMS + 1
    assert problems[-1].message == "and 20 more problems"
