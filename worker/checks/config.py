"""Check settings as a manifest gives them, and as an item stores them (``items.checks``).

YAML ``template.checks`` is a mapping::

    checks:
      size: true          # width and height as the requested aspect ratio and image size
      blank: true         # not near-uniform; a number sets the contrast threshold (default 4)
      duplicates: true    # no near-duplicate in the batch; a number sets the distance (0-32)
      max_qa_retries: 2   # `stencil retry --qa-failed` regenerates an item at most this often
      expect_text: "{{ name }}"  # a template: this text must be read in the image (OCR)
      text_tolerance: 0.1 # edits allowed, as a fraction of the expected text (0 to 0.9)

The CSV form has no template: a row's ``expect_text`` cell gives the text check (see
:func:`for_csv_row`). A row overrides the checks with a ``checks`` column: ``none`` (no checks
for this row) or a comma list of check names (``size,blank``, ``text`` for the expected text),
each with its default or the template's setting. ``expect_text`` is rendered per item by the
manifest builder.
"""

from __future__ import annotations

from typing import Any

from worker.checks.image import BLANK_STDDEV, DUPLICATE_DISTANCE

NAMES = ("size", "blank", "duplicates")
TEXT_FIELDS = ("expect_text", "text_tolerance")
MAX_TEXT_TEMPLATE = 500
MAX_DISTANCE = 32
MAX_QA_RETRIES = "max_qa_retries"
DEFAULT_QA_RETRIES = 2


def parse_template(raw: Any) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The stored form of ``template.checks``, and (field, message) problems."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, [("template.checks", f"must be a mapping of {', '.join(NAMES)}")]
    problems: list[tuple[str, str]] = []
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if value is False or value is None:
            continue
        setting, problem = _setting(str(name), value)
        if problem:
            problems.append((f"template.checks.{name}", problem))
        else:
            out[str(name)] = setting
    return (out or None), problems


def _setting(name: str, value: Any) -> tuple[Any, str | None]:
    """The stored value of one setting, or the problem with it."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name == MAX_QA_RETRIES:
        ok = number and float(value).is_integer() and 0 <= value <= 10
        return (int(value), None) if ok else (None, "must be a whole number from 0 to 10")
    if name == "expect_text":
        ok = isinstance(value, str) and value.strip() and len(value) <= MAX_TEXT_TEMPLATE
        return (
            (value, None)
            if ok
            else (None, f"must be a template of 1 to {MAX_TEXT_TEMPLATE} characters")
        )
    if name == "text_tolerance":
        ok = number and 0 <= value <= 0.9
        return (float(value), None) if ok else (None, "must be a number from 0 to 0.9")
    if name not in NAMES:
        return None, f"unknown check; checks are {', '.join(NAMES)}"
    if value is True:
        return _default(name), None
    if name == "size" or not number:
        return (
            None,
            "must be true or false" if name == "size" else "must be true, false or a number",
        )
    if name == "blank" and not 0 < value <= 100:
        return None, "the contrast threshold must be above 0 and at most 100"
    if name == "duplicates" and not (float(value).is_integer() and 0 <= value <= MAX_DISTANCE):
        return None, f"the distance must be a whole number from 0 to {MAX_DISTANCE}"
    return (int(value) if name == "duplicates" else float(value)), None


def for_row(template: dict[str, Any] | None, cell: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The row's checks: the template's, or its ``checks`` column's; and a problem, or None."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return template, None
    if not isinstance(cell, str):
        return template, "must be 'none' or a comma list of checks (size, blank, duplicates)"
    words = [word.strip().lower() for word in cell.split(",") if word.strip()]
    if words == ["none"]:
        return None, None
    unknown = [word for word in words if word not in (*NAMES, "text")]
    if unknown:
        return (
            template,
            f"unknown check {unknown[0]!r}; checks are {', '.join(NAMES)}, text or none",
        )
    if "text" in words and not (template or {}).get("expect_text"):
        return (
            template,
            "the text check needs template.checks.expect_text (CSV form: an expect_text cell)",
        )
    chosen = {word: (template or {}).get(word, _default(word)) for word in words if word != "text"}
    if "text" in words:
        chosen.update({k: v for k, v in (template or {}).items() if k in TEXT_FIELDS})
    if chosen and template and MAX_QA_RETRIES in template:
        chosen[MAX_QA_RETRIES] = template[MAX_QA_RETRIES]
    return chosen or None, None


def for_csv_row(cell: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The CSV form's template checks for a row: its ``expect_text`` cell (a template over the
    row's columns, like its ``prompt``) turns the text check on; blank: no checks."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None, None
    found, problems = parse_template({"expect_text": cell})
    return found, (problems[0][1] if problems else None)


def qa_retryable(checks: dict[str, Any] | None) -> bool:
    """Whether `retry --qa-failed` may pay for another image of this item."""
    if not checks:
        return False
    return int(checks.get("qa_retries", 0)) < int(checks.get(MAX_QA_RETRIES, DEFAULT_QA_RETRIES))


def _default(name: str) -> Any:
    return {"size": True, "blank": BLANK_STDDEV, "duplicates": DUPLICATE_DISTANCE}[name]
