"""Jinja2 templates of a manifest: compiled once, rendered per row in a sandbox.

Rendering is strict (a name the row lacks is an error) and sandboxed with a budget of work and
size (see :mod:`scheduler.manifest.sandbox`); the rendered text is streamed and cut off past the
field's own limit. A source without any Jinja2 delimiter is kept as a literal and never reaches
Jinja2, which keeps the per-row path cheap.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import UndefinedError

from scheduler.manifest.budget import MAX_VALUE_CHARS, RenderLimit
from scheduler.manifest.sandbox import ManifestEnvironment, make_environment


class TooLong(RenderLimit):
    """The rendered text is longer than its field allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"renders to more than {limit:,} characters")
        self.limit = limit


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

    __slots__ = ("_env", "_literal", "_parts", "_template", "names", "source")

    def __init__(self, env: ManifestEnvironment, source: str) -> None:
        self.source = source
        self._env = env
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

    def render(self, context: dict[str, Any], limit: int = MAX_VALUE_CHARS) -> str:
        """The rendered text, at most ``limit`` characters; raises :class:`TooLong` past it,
        :class:`RenderLimit` past the work budget, and what Jinja2 raises (callers turn each
        into a Problem).

        ``context`` must already hold the environment's globals (see :func:`base_context`): it
        is used as the template's context as is, without the copy ``Template.render`` makes.
        """
        if self._literal is not None:
            text = self._literal
        elif self._parts is not None:
            text = "".join([_lookup(context, text) if name else text for name, text in self._parts])
        else:
            return self._stream(context, limit)
        if len(text) > limit:
            raise TooLong(limit)
        return text

    def _stream(self, context: dict[str, Any], limit: int) -> str:
        """Render piece by piece, stopping as soon as the text passes ``limit`` (the pieces
        themselves are bounded: each comes from a charged loop iteration or the source)."""
        self._env.budget.start()
        template = self._template
        pieces: list[str] = []
        size = 0
        for piece in template.root_render_func(template.new_context(context, shared=True)):
            size += len(piece)
            if size > limit:
                raise TooLong(limit)
            pieces.append(piece)
        return "".join(pieces)


def _lookup(context: dict[str, Any], name: str) -> str:
    try:
        return str(context[name])
    except KeyError:
        raise UndefinedError(f"{name!r} is undefined") from None


def base_context(env: ManifestEnvironment) -> dict[str, Any]:
    """The globals every row context starts from (range, dict, namespace, ...)."""
    return dict(env.globals)


def compile_template(env: ManifestEnvironment, source: str) -> Template | str:
    """The compiled template, or why it cannot be compiled."""
    try:
        return Template(env, source)
    except TemplateSyntaxError as exc:
        return f"template syntax error: {exc.message} (template line {exc.lineno})"
    except RecursionError:
        return "template syntax error: the template nests too deeply"


__all__ = ["RenderLimit", "Template", "TooLong", "base_context", "compile_template",
           "make_environment"]  # fmt: skip
