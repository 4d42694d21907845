"""Rows to items: render each row, resolve its references, check its keys, fingerprint it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jinja2.exceptions import UndefinedError

from scheduler.fingerprint import item_fingerprint
from scheduler.manifest import values as check
from scheduler.manifest.chains import chained_ref, is_chained, provisional_digest
from scheduler.manifest.columns import key_column_problem, value_problems
from scheduler.manifest.keys import (
    MAX_KEY_LENGTH,
    MAX_ROW_KEY_CHARS,
    KeySpace,
    row_key_reason,
    unsafe_key_reason,
)
from scheduler.manifest.limits import text_problem
from scheduler.manifest.plan import ItemSpec, ResolvedRef
from scheduler.manifest.problems import Problems, shown
from scheduler.manifest.recipe import Recipe
from scheduler.manifest.refs import RefResolver
from scheduler.manifest.rows import Row
from scheduler.manifest.templates import (
    RenderLimit,
    Template,
    TooLong,
    base_context,
    compile_template,
)
from stencil.catalog import estimate_micros
from worker.checks.config import for_csv_row as checks_for_csv_row
from worker.checks.config import for_row as checks_for_row
from worker.checks.text import MAX_EXPECTED_CHARS

_Content = tuple[str, tuple[ResolvedRef, ...]]
PROMPT_CACHE_SIZE = 4096  # CSV form: distinct prompt templates kept compiled
MAX_SOURCE_CHARS = 4096  # a reference image's path or URL
MESSAGE_CHARS = 300  # how much of an exception's text a problem quotes


class Builder:
    """Turns rows into :class:`ItemSpec` one at a time, recording every problem it meets."""

    def __init__(
        self, recipe: Recipe, *, batch_id: str, resolver: RefResolver, problems: Problems
    ) -> None:
        self.recipe = recipe
        self.batch_id = batch_id
        self.resolver = resolver
        self.problems = problems
        self.items: list[ItemSpec] = []
        self._keys: dict[str, str] = {}  # key -> label of the row that has it
        self._outputs = KeySpace()  # output keys (and their sidecars) -> who writes them
        self._prompts: dict[str, Template | str] = {}  # CSV form: compiled per distinct cell
        self._row: Row | None = None
        self._globals = base_context(recipe.env)
        by_variant = recipe.prompt is not None and "variant" in recipe.prompt.names
        self._content_by_variant = by_variant or any(
            "variant" in tmpl.names for _, tmpl in recipe.images
        )

    def problem(self, message: str, fld: str) -> None:
        assert self._row is not None
        self.problems.add(self._row.file, message, row=self._row.number, field=fld)

    def render(
        self, tmpl: Template, ctx: dict[str, Any], fld: str, limit: int, note: str = ""
    ) -> str | None:
        """The rendered text, or None after recording why (too long, too much work, a template
        error, or text the record cannot store). ``note`` explains ``limit`` in a message."""
        try:
            text = tmpl.render(ctx, limit)
        except TooLong as exc:
            self.problem(f"renders to more than {exc.limit:,} characters{note}", fld)
            return None
        except RenderLimit as exc:
            self.problem(f"template failed: {exc}", fld)
            return None
        except UndefinedError as exc:
            missing = sorted(name for name in tmpl.names if name not in ctx)
            if missing:
                self.problem(f"the row has no column {', '.join(map(repr, missing))}", fld)
            else:
                self.problem(f"template failed: {_cut(str(exc.message))}", fld)
            return None
        except Exception as exc:  # a sandboxed template may raise anything: report it
            self.problem(f"template failed: {type(exc).__name__}: {_cut(str(exc))}", fld)
            return None
        reason = text_problem(text)
        if reason:
            self.problem(f"the rendered text {reason}", fld)
            return None
        return text

    def add(self, row: Row, ordinal: int) -> None:
        """Check one row and, when it is clean, append its items."""
        self._row = row
        before = len(self.problems)
        for column, message in value_problems(row.values):
            self.problem(message, column)
        if len(self.problems) > before:
            return
        ctx = self._globals.copy()
        ctx.update(row.values)
        ctx["batch"] = self.batch_id
        ctx["row"] = ordinal
        aspect, size, variants = self._overrides(row.values)
        template_checks = self.recipe.checks
        if self.recipe.csv_form:  # the CSV form: a row's expect_text cell turns the text check on
            template_checks, csv_problem = checks_for_csv_row(row.values.get("expect_text"))
            if csv_problem:
                self.problem(csv_problem, "expect_text")
        checks, checks_problem = checks_for_row(template_checks, row.values.get("checks"))
        if checks_problem:
            self.problem(checks_problem, "checks")
        key = self._key(ctx)
        if key is not None and not self.recipe.csv_form:
            shadowed = key_column_problem(row.values, key)
            if shadowed:
                self.problem(shadowed, "key")
        ctx["key"] = key or ""
        prompt_tmpl = self._prompt_template(row.values)
        by_variant = self._content_by_variant or (
            prompt_tmpl is not None and "variant" in prompt_tmpl.names
        )
        content = None if by_variant else self._content(ctx, prompt_tmpl)
        made: list[ItemSpec] = []
        for variant in range(1, variants + 1):
            ctx["variant"] = variant
            if by_variant:
                content = self._content(ctx, prompt_tmpl)
            output = None if key is None else self._output(ctx, variant)
            if content is None or output is None or key is None or len(self.problems) > before:
                continue
            prompt, refs = content
            seq = len(self.items) + len(made)
            spec = self._item(seq, key, variant, prompt, refs, aspect, size, output)
            made.append(replace(spec, checks=self._checks(checks, ctx)) if checks else spec)
        if len(self.problems) == before:
            self.items.extend(made)

    def _checks(self, checks: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any] | None:
        """The item's checks, with ``expect_text`` rendered for this row and variant."""
        source = checks.get("expect_text")
        if not isinstance(source, str):
            return checks
        compiled = self._prompts.get("\0checks:" + source)
        if compiled is None:
            compiled = compile_template(self.recipe.env, source)
            self._prompts["\0checks:" + source] = compiled
        fld = "expect_text" if self.recipe.csv_form else "template.checks.expect_text"
        if isinstance(compiled, str):
            self.problem(compiled, fld)
            return None
        text = self.render(compiled, ctx, fld, MAX_EXPECTED_CHARS)
        return None if text is None else {**checks, "expect_text": text.strip()}

    def _overrides(self, values: dict[str, Any]) -> tuple[str | None, str | None, int]:
        r = self.recipe
        aspect, size, variants = r.aspect_ratio, r.image_size, r.variants
        if not check.is_blank(values.get("aspect_ratio")):
            aspect, msg = check.check_aspect_ratio(values["aspect_ratio"], r.spec)
            if msg:
                self.problem(msg, "aspect_ratio")
        if not check.is_blank(values.get("image_size")):
            size, msg = check.check_image_size(values["image_size"], r.spec)
            if msg:
                self.problem(msg, "image_size")
        if not check.is_blank(values.get("variants")):
            number, msg = check.check_variants(values["variants"])
            if msg:
                self.problem(msg, "variants")
            variants = number or 1
        return aspect, size, variants

    def _key(self, ctx: dict[str, Any]) -> str | None:
        r = self.recipe
        if r.csv_form:
            key: str | None = str(ctx.get("key", ""))
        elif r.key is None:
            return None
        else:
            key = self.render(r.key, ctx, "key", MAX_ROW_KEY_CHARS)
        if key is None:
            return None
        key = key.strip()
        if not key:
            self.problem("the key renders empty; every row needs a unique key", "key")
            return None
        reason = row_key_reason(key)
        if reason:
            self.problem(f"the key {shown(key)} {reason}", "key")
            return None
        assert self._row is not None
        first = self._keys.setdefault(key, self._row.label)
        if first != self._row.label:
            self.problem(f"duplicate key {shown(key)}: {first} has the same key", "key")
            return None
        return key

    def _prompt_template(self, values: dict[str, Any]) -> Template | None:
        if not self.recipe.csv_form:
            return self.recipe.prompt
        source = str(values.get("prompt", ""))
        compiled = self._prompts.get(source)
        if compiled is None:
            if len(self._prompts) >= PROMPT_CACHE_SIZE:
                self._prompts.clear()
            compiled = self._prompts[source] = compile_template(self.recipe.env, source)
        if isinstance(compiled, str):
            self.problem(compiled, "prompt")
            return None
        return compiled

    def _content(self, ctx: dict[str, Any], prompt_tmpl: Template | None) -> _Content | None:
        """The rendered prompt and the resolved references, or None after recording problems."""
        prompt = None
        fld = "prompt" if self.recipe.csv_form else "template.prompt"
        if prompt_tmpl is not None:
            spec = self.recipe.spec
            limit = spec.max_prompt_chars
            note = f"; {spec.name} takes prompts of at most {limit:,} characters"
            prompt = self.render(prompt_tmpl, ctx, fld, limit, note)
            if prompt is not None:
                prompt = prompt.strip()
                if not prompt:
                    self.problem("the prompt renders empty", fld)
                    prompt = None
        refs = self._refs(ctx)
        if prompt is None or refs is None:
            return None
        return prompt, refs

    def _sources(self, ctx: dict[str, Any]) -> list[tuple[str, str]] | None:
        r = self.recipe
        if r.csv_form:
            cells = ((column, str(ctx.get(column) or "").strip()) for column in r.image_columns)
            found = [(column, cell) for column, cell in cells if cell]
            for column, cell in found:
                reason = text_problem(cell) or (
                    f"is longer than {MAX_SOURCE_CHARS:,} characters"
                    if len(cell) > MAX_SOURCE_CHARS
                    else None
                )
                if reason:
                    self.problem(f"the reference {reason}", column)
                    return None
            return found
        sources: list[tuple[str, str]] | None = []
        for fld, tmpl in r.images:
            source = self.render(tmpl, ctx, fld, MAX_SOURCE_CHARS)
            if source is None:
                sources = None
            elif source.strip() and sources is not None:
                sources.append((fld, source.strip()))
        return sources

    def _refs(self, ctx: dict[str, Any]) -> tuple[ResolvedRef, ...] | None:
        sources = self._sources(ctx)
        if sources is None:
            return None
        refs: list[ResolvedRef] = []
        for fld, source in sources:
            found = (
                chained_ref(source, (self._row.file, self._row.number, fld))
                if self._row is not None and is_chained(source)
                else self.resolver.resolve(source)
            )
            if isinstance(found, str):
                self.problem(found, fld)
            else:
                refs.append(found)
        limit = self.recipe.spec.max_ref_images
        if len(sources) > limit:
            fld = "image columns" if self.recipe.csv_form else "template.images"
            self.problem(
                f"{len(sources)} reference images; {self.recipe.spec.name} takes at most {limit}",
                fld,
            )
            return None
        return tuple(refs) if len(refs) == len(sources) else None

    def _output(self, ctx: dict[str, Any], variant: int) -> str | None:
        tmpl = self.recipe.output
        if tmpl is None:
            return None
        fld = self.recipe.output_field
        output = self.render(tmpl, ctx, fld, MAX_KEY_LENGTH)
        if output is None:
            return None
        reason = unsafe_key_reason(output)
        if reason:
            self.problem(f"output key {shown(output)} {reason}", fld)
            return None
        assert self._row is not None
        reason = self._outputs.claim(output, f"{self._row.label} variant {variant}")
        if reason:
            self.problem(reason, fld)
            return None
        return output

    def _item(
        self,
        seq: int,
        key: str,
        variant: int,
        prompt: str,
        refs: tuple[ResolvedRef, ...],
        aspect: str | None,
        size: str | None,
        output: str,
    ) -> ItemSpec:
        r = self.recipe
        assert self._row is not None
        return ItemSpec(
            seq=seq,
            key=key,
            variant=variant,
            row_label=self._row.label,
            prompt=prompt,
            refs=refs,
            aspect_ratio=aspect,
            image_size=size,
            output_key=output,
            fingerprint=item_fingerprint(
                provider=r.provider,
                model=r.model,
                prompt=prompt,
                ref_digests=[ref.digest or provisional_digest(ref) for ref in refs],
                aspect_ratio=aspect,
                image_size=size,
                variant=variant,
                scope=r.reuse_scope,
            ),
            estimate_micros=estimate_micros(
                r.model, prompt=prompt, ref_count=len(refs), image_size=size
            ),
        )


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "..."
