"""A manifest's top level, checked: a :class:`Recipe` from the YAML form or the CSV form."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scheduler.manifest import values as check
from scheduler.manifest.keys import DEFAULT_OUTPUT
from scheduler.manifest.limits import BATCH_NAME, column_problem, fitted
from scheduler.manifest.plan import DEFAULT_PRIORITY, SubmitOptions
from scheduler.manifest.problems import Problems, shown
from scheduler.manifest.rows import CsvTable, Row, inline_rows, jsonl_rows, resolve_inside
from scheduler.manifest.safe_yaml import DuplicateKeyError, load_yaml
from scheduler.manifest.templates import Template, compile_template, make_environment
from stencil.catalog import ModelSpec, spec_for, usd_to_micros
from stencil.settings import Settings
from worker.checks.config import parse_template as parse_checks
from worker.providers import PROVIDERS

TOP_FIELDS = (
    "version", "name", "model", "provider", "key", "template",
    "rows", "output", "budget_usd", "priority",
)  # fmt: skip
TEMPLATE_FIELDS = ("prompt", "images", "aspect_ratio", "image_size", "variants", "checks")
IMAGE_COLUMN = re.compile(r"^image(?:_(\d+))?$")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # a YAML manifest; many rows belong in a CSV or JSONL file


@dataclass
class Recipe:
    """How to turn each row into items; ``key``/``prompt`` None mean the CSV form's columns."""

    file: str
    root: Path
    name: str = ""
    model: str = ""
    provider: str = ""
    reuse_scope: str | None = None
    spec: ModelSpec = field(default_factory=lambda: spec_for("gemini-2.5-flash-image"))
    priority: int = DEFAULT_PRIORITY
    budget_micros: int | None = None
    key: Template | None = None
    prompt: Template | None = None
    images: list[tuple[str, Template]] = field(default_factory=list)
    image_columns: list[str] = field(default_factory=list)
    aspect_ratio: str | None = None
    image_size: str | None = None
    variants: int = 1
    checks: dict[str, Any] | None = None  # worker/checks/config.py; a row's column overrides
    output: Template | None = None
    output_field: str = "output"
    rows: Iterable[Row] = ()
    env: Any = field(default_factory=make_environment)
    csv_form: bool = False


class _Reader:
    """Shared helpers: each records a problem in the manifest file and returns None on failure."""

    def __init__(self, recipe: Recipe, problems: Problems) -> None:
        self.recipe = recipe
        self.problems = problems

    def problem(self, message: str, fld: str | None = None, row: int | None = None) -> None:
        self.problems.add(self.recipe.file, message, row=row, field=fld)

    def compile(self, source: Any, fld: str) -> Template | None:
        if not isinstance(source, str):
            self.problem(f"must be a string template, not {shown(source)}", fld)
            return None
        compiled = compile_template(self.recipe.env, source)
        if isinstance(compiled, str):
            self.problem(compiled, fld)
            return None
        return compiled

    def common(self, raw: dict[str, Any], options: SubmitOptions, settings: Settings) -> None:
        """Model, provider, priority, budget and output: options win over the manifest."""
        r = self.recipe
        r.reuse_scope = options.reuse_scope
        model = options.model or raw.get("model", settings.model)
        model, msg = check.check_model(model)
        if msg:
            self.problem(msg, "model")
        r.model = model or settings.model
        r.spec = spec_for(r.model)
        provider = options.provider or raw.get("provider", settings.provider)
        if not isinstance(provider, str) or provider not in PROVIDERS:
            self.problem(
                f"{shown(provider)} is not a provider; choose one of {', '.join(PROVIDERS)}",
                "provider",
            )
        else:
            r.provider = provider
        priority = options.priority if options.priority is not None else raw.get("priority")
        if priority is not None:
            number, msg = check.check_priority(priority)
            if msg:
                self.problem(msg, "priority")
            r.priority = number if number is not None else DEFAULT_PRIORITY
        budget = options.budget_usd if options.budget_usd is not None else raw.get("budget_usd")
        if budget is not None:
            usd, msg = check.check_budget(budget)
            if msg:
                self.problem(msg, "budget_usd")
            r.budget_micros = usd_to_micros(usd) if usd is not None else None
        output = options.output or raw.get("output", DEFAULT_OUTPUT)
        r.output = self.compile(output, "output")

    def name(self, value: Any, *, derived: bool) -> None:
        """The batch name: an explicit one must fit the record; a derived one is cut to fit."""
        name, msg = check.check_text(value, "name")
        if msg:
            self.problem(msg + ("" if derived else " (name is required)"), "name")
            return
        assert name is not None
        if derived:
            self.recipe.name = fitted(name, BATCH_NAME)
            return
        msg = column_problem(name, BATCH_NAME)
        if msg:
            self.problem(f"the batch name {msg}", "name")
        self.recipe.name = name

    def template(self, tmpl: Any) -> None:
        """The ``template:`` mapping: prompt, images and image options."""
        if not isinstance(tmpl, dict):
            self.problem("is required: a mapping with at least prompt", "template")
            return
        for name in tmpl:
            if name not in TEMPLATE_FIELDS:
                fields = ", ".join(TEMPLATE_FIELDS)
                self.problem(
                    f"unknown field {shown(name)}; fields are {fields}", _field(name, "template.")
                )
        if "prompt" not in tmpl:
            self.problem("is required", "template.prompt")
        else:
            self.recipe.prompt = self.compile(tmpl["prompt"], "template.prompt")
        images = tmpl.get("images", [])
        if not isinstance(images, list):
            self.problem("must be a list of paths or URLs", "template.images")
            images = []
        for index, source in enumerate(images):
            compiled = self.compile(source, f"template.images[{index}]")
            if compiled is not None:
                self.recipe.images.append((f"template.images[{index}]", compiled))
        self.template_options(tmpl)
        self.recipe.checks, found = parse_checks(tmpl.get("checks"))
        for fld, message in found:
            self.problem(message, fld)

    def template_options(self, tmpl: dict[str, Any]) -> None:
        r = self.recipe
        if "aspect_ratio" in tmpl:
            r.aspect_ratio, msg = check.check_aspect_ratio(tmpl["aspect_ratio"], r.spec)
            if msg:
                self.problem(msg, "template.aspect_ratio")
        if "image_size" in tmpl:
            r.image_size, msg = check.check_image_size(tmpl["image_size"], r.spec)
            if msg:
                self.problem(msg, "template.image_size")
        if "variants" in tmpl:
            variants, msg = check.check_variants(tmpl["variants"])
            if msg:
                self.problem(msg, "template.variants")
            r.variants = variants or 1

    def rows(self, value: Any) -> None:
        r = self.recipe
        if isinstance(value, list):
            if not value:
                self.problem("has no rows", "rows")
            r.rows = inline_rows(value, r.file, self.problems)
            return
        if not isinstance(value, str) or not value.strip():
            self.problem("must be a CSV or JSONL path, or a list of rows", "rows")
            return
        path = resolve_inside(r.root, value)
        if isinstance(path, str):
            self.problem(f"rows file {shown(value)} {path}", "rows")
            return
        display = str(Path(r.file).parent / value)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            r.rows = CsvTable(path, display, self.problems)
        elif suffix in (".jsonl", ".ndjson"):
            r.rows = jsonl_rows(path, display, self.problems)
        else:
            self.problem(f"rows file {shown(value)} must end in .csv or .jsonl", "rows")


def _field(name: Any, prefix: str = "") -> str:
    text = str(name) if isinstance(name, str | int | float | bool) else type(name).__name__
    return prefix + (text if len(text) <= 60 else text[:60] + "...")


def _load_yaml(path: Path, reader: _Reader) -> dict[str, Any] | None:
    """The manifest's mapping, read with :func:`load_yaml` (safe, no duplicate keys, aliases and
    nesting bounded), or None after recording why not."""
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            reader.problem(
                f"is {size:,} bytes; a YAML manifest may have at most {MAX_MANIFEST_BYTES:,} "
                "(put many rows in a CSV or JSONL file named by rows:)"
            )
            return None
        raw = load_yaml(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        reader.problem(f"cannot read the manifest: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        reader.problem("is not UTF-8 text")
        return None
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        reader.problem(str(exc.problem), exc.field, row=mark.line + 1 if mark else None)
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reader.problem(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", row=line)
        return None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        reader.problem(f"invalid YAML: {shown(str(exc))}")
        return None
    if not isinstance(raw, dict):
        reader.problem("a YAML manifest must be a mapping of fields")
        return None
    return raw


def yaml_recipe(
    path: Path, options: SubmitOptions, settings: Settings, problems: Problems
) -> Recipe:
    """The recipe of a YAML manifest; every problem recorded in ``problems``."""
    recipe = Recipe(file=str(path), root=path.parent)
    reader = _Reader(recipe, problems)
    raw = _load_yaml(path, reader)
    if raw is None:
        return recipe
    for field_name in raw:
        if field_name not in TOP_FIELDS:
            fields = ", ".join(TOP_FIELDS)
            reader.problem(f"unknown field {shown(field_name)}; fields are {fields}",
                           _field(field_name))  # fmt: skip
    if raw.get("version") != 1 or isinstance(raw.get("version"), bool):
        reader.problem(f"version must be 1, not {shown(raw.get('version'))}", "version")
    reader.name(options.name or raw.get("name"), derived=False)
    reader.common(raw, options, settings)
    if "key" not in raw:
        reader.problem("is required (a template rendering each row's unique key)", "key")
    else:
        recipe.key = reader.compile(raw["key"], "key")
    reader.template(raw.get("template"))
    if "rows" not in raw:
        reader.problem("is required: a CSV or JSONL path, or a list of rows", "rows")
    else:
        reader.rows(raw["rows"])
    return recipe


def csv_recipe(
    path: Path, options: SubmitOptions, settings: Settings, problems: Problems
) -> Recipe:
    """The recipe of a CSV submitted on its own: columns key, prompt, image, image_2, ..."""
    recipe = Recipe(file=str(path), root=path.parent, output_field="output", csv_form=True)
    reader = _Reader(recipe, problems)
    reader.name(options.name or path.stem, derived=options.name is None)
    reader.common({}, options, settings)
    table = CsvTable(path, str(path), problems)
    recipe.rows = table
    if table.header is None:
        return recipe
    for column in ("key", "prompt"):
        if column not in table.header:
            reader.problem(f"the CSV form needs a {column!r} column", column, row=1)
            recipe.rows = ()
    numbered = []
    for column in table.header:
        match = IMAGE_COLUMN.match(column)
        if match:
            numbered.append((int(match.group(1) or 1), column))
    recipe.image_columns = [column for _, column in sorted(numbered)]
    return recipe
