"""One test per kind of manifest problem, and all problems reported at once."""

from __future__ import annotations

import os

import pytest

from tests.scheduler.manifest.conftest import Folder, only

BASE = """
version: 1
name: t
key: "{{ sku }}"
template:
  prompt: "Photo of {{ name }}"
rows:
  - {sku: A-1, name: shirt}
  - {sku: A-2, name: scarf}
"""


def yaml_with(images: str = "", rows: str = "", extra: str = "", model: str = "") -> str:
    text = f"version: 1\nname: t\nkey: '{{{{ sku }}}}'\n{model}{extra}"
    text += "template:\n  prompt: 'Photo of {{ name }}'\n"
    if images:
        text += "  images:\n" + "".join(f"    - '{i}'\n" for i in images.split(","))
    text += "rows:\n" + (rows or "  - {sku: A-1, name: shirt}\n")
    return text


def test_unknown_top_level_field(folder: Folder) -> None:
    folder.write("m.yaml", BASE + "ouput: x/{{ key }}.png\n")
    problem = only(folder.problems("m.yaml"), lambda p: p.field == "ouput")
    assert "unknown field 'ouput'" in problem.message
    assert problem.file.endswith("m.yaml")


def test_unknown_template_field(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("template:\n", "template:\n  aspect: '1:1'\n"))
    assert only(folder.problems("m.yaml"), lambda p: p.field == "template.aspect")


def test_missing_column_names_the_column_and_row(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("{sku: A-2, name: scarf}", "{sku: A-2}"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert (problem.row, problem.field) == (1, "template.prompt")
    assert "'name'" in problem.message


def test_missing_column_in_csv_rows_names_the_line(folder: Folder) -> None:
    folder.write("m.yaml", BASE.split("rows:")[0].replace("name }}", "color }}") + "rows: p.csv\n")
    folder.write("p.csv", "sku,name\nA-1,shirt\nA-2,scarf\n")
    problems = folder.problems("m.yaml")
    assert [(p.row, p.field) for p in problems] == [(2, "template.prompt"), (3, "template.prompt")]
    assert all("'color'" in p.message and p.file.endswith("p.csv") for p in problems)


def test_duplicate_key_names_both_places(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("sku: A-2", "sku: A-1"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert (problem.row, problem.field) == (1, "key")
    assert "duplicate key 'A-1'" in problem.message and "rows[0]" in problem.message


def test_empty_key(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("sku: A-2", "sku: ''"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert (problem.row, problem.field) == (1, "key") and "empty" in problem.message


def test_missing_image(folder: Folder) -> None:
    folder.write("m.yaml", yaml_with(images="refs/nope.png"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.images[0]" and "does not exist" in problem.message


def test_image_outside_the_folder(folder: Folder) -> None:
    folder.image("../outside.png")
    folder.write("m.yaml", yaml_with(images="../outside.png"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert "outside the manifest's folder" in problem.message


def test_absolute_image_path_outside_the_folder(folder: Folder) -> None:
    outside = folder.image("../abs.png")
    folder.write("m.yaml", yaml_with(images=str(outside.resolve())))
    assert "outside" in only(folder.problems("m.yaml"), lambda p: True).message


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_escaping_the_folder(folder: Folder) -> None:
    target = folder.image("../secret.png")
    (folder.root / "refs").mkdir()
    (folder.root / "refs" / "link.png").symlink_to(target)
    folder.write("m.yaml", yaml_with(images="refs/link.png"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert "symlink" in problem.message and "outside" in problem.message


def test_symlink_inside_the_folder_is_fine(folder: Folder) -> None:
    target = folder.image("real.png")
    (folder.root / "link.png").symlink_to(target)
    folder.write("m.yaml", yaml_with(images="link.png"))
    assert folder.load("m.yaml").items[0].refs[0].source == "link.png"


def test_bad_aspect_ratio(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("template:\n", "template:\n  aspect_ratio: '5:7'\n"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.aspect_ratio" and "'5:7'" in problem.message
    assert "16:9" in problem.message


def test_unquoted_aspect_ratio_explains_yaml(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("template:\n", "template:\n  aspect_ratio: 4:5\n"))
    assert "quoted" in only(folder.problems("m.yaml"), lambda p: True).message


def test_bad_aspect_ratio_override_in_a_row(folder: Folder) -> None:
    folder.write(
        "m.yaml", BASE.replace("{sku: A-2, name: scarf}", "{sku: A-2, name: s, aspect_ratio: wide}")
    )
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert (problem.row, problem.field) == (1, "aspect_ratio")


def test_image_size_on_a_model_without_it(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("template:\n", "template:\n  image_size: 2K\n"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.image_size" and "takes no image_size" in problem.message


def test_image_size_not_offered_by_the_model(folder: Folder) -> None:
    text = BASE.replace("template:\n", "model: gemini-3-pro-image\ntemplate:\n  image_size: 8K\n")
    folder.write("m.yaml", text)
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert "'8K'" in problem.message and "4K" in problem.message


@pytest.mark.parametrize("value", ["0", "9", "two", "1.5", "true"])
def test_bad_variants(folder: Folder, value: str) -> None:
    folder.write("m.yaml", BASE.replace("template:\n", f"template:\n  variants: {value}\n"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.variants"
    assert "integer from 1 to 8" in problem.message


def test_bad_variants_in_a_csv_row(folder: Folder) -> None:
    folder.write("p.csv", "key,prompt,variants\na,hello,2\nb,hello,12\n")
    problem = only(folder.problems("p.csv"), lambda p: True)
    assert (problem.row, problem.field) == (3, "variants")


def test_malformed_csv_ragged_row(folder: Folder) -> None:
    folder.write("p.csv", "key,prompt\na,hello\nb,hello,extra\nc\n")
    problems = folder.problems("p.csv")
    assert [p.row for p in problems] == [3, 4]
    assert "3 cells but the header has 2" in problems[0].message


def test_unterminated_quote(folder: Folder) -> None:
    folder.write("p.csv", 'key,prompt\na,hello\nb,"never closed\n')
    problem = only(folder.problems("p.csv"), lambda p: True)
    assert problem.row == 3 and "malformed CSV" in problem.message


def test_duplicate_and_empty_header(folder: Folder) -> None:
    folder.write("p.csv", "key,prompt,key,\na,hello,a,\n")
    problems = folder.problems("p.csv")
    assert all(p.row == 1 for p in problems)
    assert any("twice" in p.message for p in problems)
    assert any("empty" in p.message for p in problems)


def test_csv_form_needs_key_and_prompt(folder: Folder) -> None:
    folder.write("p.csv", "name,image\na,x.png\n")
    problems = folder.problems("p.csv")
    assert {p.field for p in problems} == {"key", "prompt"}


def test_http_url_is_refused(folder: Folder) -> None:
    folder.write("m.yaml", yaml_with(images="http://example.com/a.png"))
    problem = only(folder.problems("m.yaml", https_fetcher=lambda url: b""), lambda p: True)
    assert "must be https" in problem.message


def test_other_scheme_is_refused(folder: Folder) -> None:
    folder.write("m.yaml", yaml_with(images="file:///etc/passwd"))
    assert "must be https" in only(folder.problems("m.yaml"), lambda p: True).message


def test_non_image_file(folder: Folder) -> None:
    folder.write("fake.png", "this is text, whatever the extension says")
    folder.write("m.yaml", yaml_with(images="fake.png"))
    assert "not a PNG, JPEG or WebP" in only(folder.problems("m.yaml"), lambda p: True).message


def test_too_many_refs(folder: Folder) -> None:
    for name in "abcd":
        folder.image(f"{name}.png")
    folder.write("m.yaml", yaml_with(images="a.png,b.png,c.png,d.png"))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.images" and "at most 3" in problem.message


def test_too_large_ref(folder: Folder) -> None:
    folder.image("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (7 * 1024 * 1024))
    folder.write("m.yaml", yaml_with(images="big.png"))
    assert "at most" in only(folder.problems("m.yaml"), lambda p: True).message


@pytest.mark.parametrize(
    "output", ["/abs/{{ key }}.png", "a/../{{ key }}.png", "a//{{ key }}.png", "a\\\\{{ key }}.png"]
)
def test_unsafe_output_key(folder: Folder, output: str) -> None:
    folder.write("m.yaml", BASE + f'output: "{output}"\n')
    problems = folder.problems("m.yaml")
    assert len(problems) == 2 and all(p.field == "output" for p in problems)
    assert "output key" in problems[0].message


def test_duplicate_output_key(folder: Folder) -> None:
    folder.write("m.yaml", BASE + 'output: "same/{{ variant }}.png"\n')
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert (problem.row, problem.field) == (1, "output")
    assert "'same/1.png'" in problem.message and "rows[0] variant 1" in problem.message


def test_empty_prompt(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("name: scarf", "name: ''").replace("Photo of ", ""))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert (problem.row, problem.field) == (1, "template.prompt") and "empty" in problem.message


def test_template_syntax_error_names_the_field(folder: Folder) -> None:
    folder.write("m.yaml", BASE.replace("Photo of {{ name }}", "Photo of {{ name "))
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "template.prompt" and "syntax error" in problem.message


def test_template_syntax_error_in_a_csv_prompt_cell(folder: Folder) -> None:
    folder.write("p.csv", "key,prompt\na,{% if %}\n")
    problem = only(folder.problems("p.csv"), lambda p: True)
    assert (problem.row, problem.field) == (2, "prompt")


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ("version: 2\n", "version", "must be 1"),
        ("budget_usd: 0\n", "budget_usd", "greater than 0"),
        ("priority: 10\n", "priority", "0 to 9"),
        ("provider: openai\n", "provider", "not a provider"),
    ],
)
def test_top_level_values(folder: Folder, line: str, field: str, words: str) -> None:
    folder.write("m.yaml", BASE.replace("version: 1\n", "") + line)
    found = [p for p in folder.problems("m.yaml") if p.field == field]
    assert found and words in found[-1].message


def test_required_fields(folder: Folder) -> None:
    folder.write("m.yaml", "version: 1\ntemplate: {}\n")
    fields = {p.field for p in folder.problems("m.yaml")}
    assert {"name", "key", "template.prompt", "rows"} <= fields


def test_rows_file_outside_the_folder(folder: Folder) -> None:
    folder.write("../p.csv", "sku,name\nA,x\n")
    folder.write("m.yaml", BASE.split("rows:")[0] + "rows: ../p.csv\n")
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert problem.field == "rows" and "outside" in problem.message


def test_invalid_yaml_names_the_line(folder: Folder) -> None:
    folder.write("m.yaml", "version: 1\nname: [unclosed\n")
    problem = only(folder.problems("m.yaml"), lambda p: True)
    assert "invalid YAML" in problem.message and problem.row is not None


def test_all_problems_at_once(folder: Folder) -> None:
    folder.write(
        "m.yaml",
        """
        version: 1
        name: t
        colour: red
        key: "{{ sku }}"
        template:
          prompt: "{{ name }}"
          images: ["{{ photo }}"]
          variants: 20
        rows: p.csv
        """,
    )
    folder.write("p.csv", "sku,name,photo\nA,shirt,missing.png\nA,shirt,\nB\nC,,\n")
    problems = folder.problems("m.yaml")
    places = {(p.row, p.field) for p in problems}
    assert (None, "colour") in places
    assert (None, "template.variants") in places
    assert (2, "template.images[0]") in places  # missing image
    assert (3, "key") in places  # duplicate key
    assert (4, None) in places  # ragged row
    assert (5, "template.prompt") in places  # empty prompt
    assert len(problems) == 6
