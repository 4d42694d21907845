"""Jinja2 templates of a manifest: compiled once, rendered per row in a sandbox.

Rendering is strict (a name the row lacks is an error) and sandboxed (no attribute escapes, no
huge repetitions or powers). A source without any Jinja2 delimiter is kept as a literal and
never reaches Jinja2, which keeps the per-row path cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_REPEAT = 100_000  # longest string or list a template may build with "*"
MAX_EXPONENT = 64  # largest exponent a template may use with "**"


class ManifestEnvironment(SandboxedEnvironment):
    """A sandbox that also refuses string repetition and powers big enough to exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is too large")
            return left**right
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                if len(seq) * times > MAX_REPEAT:
                    raise SecurityError("repetition builds a value that is too large")
        return left * right


def make_environment() -> ManifestEnvironment:
    return ManifestEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


class Template:
    """A compiled template: :meth:`render` with a row context; :attr:`names` it reads."""

    __slots__ = ("_literal", "_template", "names", "source")

    def __init__(self, env: SandboxedEnvironment, source: str) -> None:
        self.source = source
        if "{" in source and any(mark in source for mark in ("{{", "{%", "{#")):
            ast = env.parse(source)
            undeclared = meta.find_undeclared_variables(ast)
            self.names: frozenset[str] = frozenset(undeclared - set(env.globals))
            self._template = env.from_string(ast)
            self._literal: str | None = None
        else:
            self.names = frozenset()
            self._literal = source

    def render(self, context: Mapping[str, Any]) -> str:
        """The rendered text; raises what Jinja2 raises (callers turn it into a Problem)."""
        if self._literal is not None:
            return self._literal
        return self._template.render(context)


def compile_template(env: SandboxedEnvironment, source: str) -> Template | str:
    """The compiled template, or the syntax error's message."""
    try:
        return Template(env, source)
    except TemplateSyntaxError as exc:
        return f"template syntax error: {exc.message} (template line {exc.lineno})"
