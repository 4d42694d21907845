"""The Jinja2 sandbox manifests are rendered in: no escapes, and a budget of work and of size.

Jinja2's sandbox stops attribute escapes; it does not stop a template from running for ever or
building gigabytes. This environment charges every render's :class:`~.budget.Budget`: loops are
counted by wrapping every ``{% for %}`` iterable (and ``loop(...)`` of recursive loops),
``range`` is a budgeted range, every call, filter, ``~`` and intercepted operator is charged and
its result checked, operations that grow values are checked before they run (:mod:`.growth`),
and printing a list or mapping is measured by walking it (nested shared lists cannot expand).
Mutating methods (``append``, ``update``...) are refused (immutable sandbox); ``lipsum`` is
removed. Going past a limit raises :class:`~.budget.RenderLimit`, which the builder reports as
a problem of the row and field.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

from scheduler.manifest.budget import (
    MAX_VALUE_CHARS,
    BoundedBuffer,
    Budget,
    BudgetedRange,
    RenderLimit,
    too_long,
)
from scheduler.manifest.growth import (
    AMPLIFYING_FILTERS,
    BoundedFormatter,
    check_binop,
    filter_check,
    method_check,
)

STEP_FILTER = "_stencil_step"  # wraps every {% for %} iterable


@pass_context
def _step_filter(context: Context, iterable: Any) -> Any:
    if isinstance(iterable, BudgetedRange):
        return iterable  # already charged per number
    budget: Budget = context.environment.budget  # type: ignore[attr-defined]
    return budget.counting(iterable)


@pass_context
def _budgeted_range(context: Context, *args: int) -> BudgetedRange:
    budget: Budget = context.environment.budget  # type: ignore[attr-defined]
    return BudgetedRange(budget, range(*args))


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)
    lead = () if pass_arg is None else (None,)
    signature: inspect.Signature | None = None
    if name in AMPLIFYING_FILTERS:
        signature = inspect.signature(func)

    @pass_context
    @wraps(func)
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget: Budget = context.environment.budget  # type: ignore[attr-defined]
        budget.charge()
        budget.text_size(value)
        for arg in (*args, *kwargs.values()):
            budget.text_size(arg)
        named: dict[str, Any] = {}
        if signature is not None:
            try:
                named = signature.bind_partial(*lead, value, *args, **kwargs).arguments
            except TypeError:
                pass  # the filter itself will refuse the arguments
        value = filter_check(budget, name, value, named)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return budget.made(result)

    guarded.jinja_pass_arg = _PassArg.context  # type: ignore[attr-defined]  # wraps copied func's
    return guarded


class _CodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a budgeted join instead of a bare ``str_join``, and buffers
    (macros, set blocks, filter and call blocks) to :class:`BoundedBuffer`."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.budgeted_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class ManifestEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with a :class:`Budget` on every render (see the module doc)."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})
    code_generator_class = _CodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.budget = Budget()
        self.finalize = self._finalize
        self.globals.pop("lipsum", None)
        self.globals["range"] = _budgeted_range
        self.filters = {name: _guard_filter(name, func) for name, func in self.filters.items()}
        self.filters[STEP_FILTER] = _step_filter

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, STEP_FILTER, [], [], None, None, lineno=loop.lineno)
        tree.set_environment(self)
        return tree

    @staticmethod
    def bounded_buffer() -> BoundedBuffer:
        return BoundedBuffer()

    def _finalize(self, value: Any) -> Any:
        """Printing a container: measured first (shared nested lists would print for ever)."""
        if not isinstance(value, str | int | float):
            self.budget.text_size(value)
        return value

    def budgeted_concat(self, parts: tuple[Any, ...]) -> str:
        size = sum(self.budget.text_size(part) for part in parts)
        if size > MAX_VALUE_CHARS:
            raise RenderLimit(too_long(size))
        return self.budget.made("".join([str(part) for part in parts]))  # type: ignore[no-any-return]

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.budget.charge()
        check_binop(self.budget, operator, left, right)
        return self.budget.made(self.binop_table[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = __self.budget
        budget.charge()
        if isinstance(__obj, LoopContext) and args:  # loop(children) in a recursive loop
            args = (budget.counting(args[0]), *args[1:])
        else:
            for arg in (*args, *kwargs.values()):
                budget.text_size(arg)
            args = method_check(budget, __obj, args, kwargs)
        return budget.made(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        owner: str = value.__self__
        is_map = value.__name__ == "format_map"
        formatter = BoundedFormatter(self)

        def guarded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return str(formatter.vformat(owner, (), args[0]))
            return str(formatter.vformat(owner, args, kwargs))

        return guarded


def make_environment() -> ManifestEnvironment:
    return ManifestEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
