"""Jinja2 templates of a manifest: compiled once, rendered per row in a sandbox.

Rendering is strict (a name the row lacks is an error) and sandboxed (no attribute escapes, no
huge repetitions or powers). A source without any Jinja2 delimiter is kept as a literal and
never reaches Jinja2, which keeps the per-row path cheap.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import concat

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


# Names Jinja2 gives a meaning of its own; a template using them always goes through Jinja2.
_SPECIAL_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "self", "loop", "caller", "varargs",
     "kwargs", "and", "or", "not", "in", "is", "if", "else"}
)  # fmt: skip
_PLAIN_LOOKUP = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")

Parts = list[tuple[bool, str]]  # (is_name, text): literal text, or the name of a column


def _plain_parts(source: str) -> Parts | None:
    """The parts of a template made only of text and ``{{ name }}``, found without Jinja2."""
    if "{%" in source or "{#" in source:
        return None
    parts: Parts = []
    pos = 0
    for match in _PLAIN_LOOKUP.finditer(source):
        parts.append((False, source[pos : match.start()]))
        parts.append((True, match.group(1)))
        pos = match.end()
    parts.append((False, source[pos:]))
    for is_name, text in parts:
        if is_name and text in _SPECIAL_NAMES:
            return None
        if not is_name and ("{{" in text or text.endswith("{") or text.startswith("}")):
            return None
    return [(is_name, text.replace("\r\n", "\n")) for is_name, text in parts if is_name or text]


def _ast_parts(ast: nodes.Template) -> Parts | None:
    """The same from Jinja2's syntax tree (catches ``{{name}}`` spellings the regex misses)."""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    parts: Parts = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append((False, node.data))
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            if node.name in _SPECIAL_NAMES:
                return None
            parts.append((True, node.name))
        else:
            return None
    return parts


class Template:
    """A compiled template: :meth:`render` with a row context; :attr:`names` it reads.

    Literal text and templates made only of text and plain ``{{ name }}`` lookups (the common
    case: keys, output paths, most prompts) are rendered by joining strings, as Jinja2 would.
    """

    __slots__ = ("_literal", "_parts", "_template", "names", "source")

    def __init__(self, env: SandboxedEnvironment, source: str) -> None:
        self.source = source
        self._literal: str | None = None
        self._template: Any = None
        if "{" not in source or not any(mark in source for mark in ("{{", "{%", "{#")):
            self.names: frozenset[str] = frozenset()
            self._parts: Parts | None = None
            self._literal = source.replace("\r\n", "\n")
            return
        self._parts = _plain_parts(source)
        if self._parts is None:
            # Only templates beyond plain lookups pay for Jinja2's parser and code generation.
            ast = env.parse(source)
            self._parts = _ast_parts(ast)
            if self._parts is None:
                self._template = env.from_string(ast)
                undeclared = meta.find_undeclared_variables(ast)
                self.names = frozenset(undeclared - set(env.globals))
                return
        self.names = frozenset(text for is_name, text in self._parts if is_name) - set(env.globals)

    def render(self, context: dict[str, Any]) -> str:
        """The rendered text; raises what Jinja2 raises (callers turn it into a Problem).

        ``context`` must already hold the environment's globals (see :func:`base_context`): it
        is used as the template's context as is, without the copy ``Template.render`` makes.
        """
        if self._literal is not None:
            return self._literal
        if self._parts is not None:
            return "".join([_lookup(context, text) if name else text for name, text in self._parts])
        template = self._template
        return str(concat(template.root_render_func(template.new_context(context, shared=True))))


def _lookup(context: dict[str, Any], name: str) -> str:
    try:
        return str(context[name])
    except KeyError:
        raise UndefinedError(f"{name!r} is undefined") from None


def base_context(env: SandboxedEnvironment) -> dict[str, Any]:
    """The globals every row context starts from (range, dict, namespace, ...)."""
    return dict(env.globals)


def compile_template(env: SandboxedEnvironment, source: str) -> Template | str:
    """The compiled template, or the syntax error's message."""
    try:
        return Template(env, source)
    except TemplateSyntaxError as exc:
        return f"template syntax error: {exc.message} (template line {exc.lineno})"
