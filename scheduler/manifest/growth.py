"""Operations that can make a value far larger than their operands, checked before they run.

``'x' * n``, ``2 ** n``, ``'%9999999d' % 1``, ``'{:>9999999}'.format(1)``, ``s.replace('x', big)``,
``sep.join(many)``, ``s.center(n)``, ``s.expandtabs(n)``, ``s.translate(table)`` and the filters
``center``, ``indent``, ``wordwrap``, ``replace``, ``join``, ``format``, ``batch`` and ``slice``
allocate their result in one step, so checking it afterwards would be too late: each is
estimated from its arguments and refused (:class:`~scheduler.manifest.budget.RenderLimit`) when
the result would pass the budget's limits.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2.sandbox import SandboxedFormatter

from scheduler.manifest.budget import (
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_VALUE_CHARS,
    Budget,
    RenderLimit,
    too_long,
)

# Filters whose result can be far larger than their input: their arguments are checked first.
AMPLIFYING_FILTERS = frozenset(
    {"center", "indent", "wordwrap", "replace", "join", "format", "batch", "slice"}
)
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and width > MAX_VALUE_CHARS:
        raise RenderLimit(f"{what} {width:,} is wider than {MAX_VALUE_CHARS:,} characters")


def _check_estimate(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise RenderLimit(f"{what} would build more than {MAX_VALUE_CHARS:,} characters")


def _replaced_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(text, str | bytes) or not isinstance(new, str | bytes):
        return 0
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old or ""))


def check_printf(budget: Budget, fmt: str | bytes, values: Any) -> None:
    """``fmt % values`` would stay small: no ``*`` widths, no huge widths, bounded values."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    for match in _PRINTF.finditer(text):
        for part in match.groups():
            if part == "*":
                raise RenderLimit("'*' widths in % formatting are not allowed in templates")
            if part is not None:
                _check_width(int(part), "a % format width of")
    budget.text_size(values)


class BoundedFormatter(SandboxedFormatter):
    """``str.format`` in templates: format specs may not ask for huge widths or precisions."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        for digits in _DIGITS.findall(format_spec):
            _check_width(int(digits), "a format width of")
        self._env.budget.text_size(value)  # type: ignore[attr-defined]
        return super().format_field(value, format_spec)


def method_check(
    budget: Budget, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Checks of the string methods that can make results far larger than their inputs."""
    owner = getattr(func, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(func, "__name__", "")
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(args[0], f"{name}() width")
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        tabsize = tabsize if isinstance(tabsize, int) else 8
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        _check_estimate(len(owner) + tabs * tabsize, name)
    elif name == "replace" and len(args) >= 2:
        _check_estimate(_replaced_size(owner, *args[:3]), name)
    elif name == "join" and args:
        parts = list(budget.counting(args[0]))
        _check_estimate(budget.text_size(parts) + len(owner) * len(parts), name)
        return (parts, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict):
        widest = max((budget.text_size(v) for v in args[0].values()), default=1)
        _check_estimate(len(owner) * max(widest, 1), name)
    return args


def filter_check(budget: Budget, name: str, value: Any, named: dict[str, Any]) -> Any:
    """Checks of the filters that can make results far larger than their inputs.

    ``named`` holds the call's arguments by parameter name (positional or keyword).
    """
    text = value if isinstance(value, str) else ""
    if name == "center":
        _check_width(named.get("width"), "center width")
    elif name == "indent":
        width = named.get("width", 4)
        pad = width if isinstance(width, int) else len(str(width))
        _check_width(pad, "indent width")
        _check_estimate(len(text) + (text.count("\n") + 1) * pad, name)
    elif name == "wordwrap":
        width = named.get("width", 79)
        wrap = named.get("wrapstring") or "\n"
        width = width if isinstance(width, int) else 1
        lines = len(text) // max(width, 1) + text.count("\n") + 1
        _check_estimate(len(text) + lines * len(str(wrap)), name)
    elif name == "replace":
        size = _replaced_size(str(value), named.get("old"), named.get("new"), named.get("count"))
        _check_estimate(size, name)
    elif name == "join":
        parts = value if isinstance(value, str) else list(budget.counting(value))
        sep = named.get("d", "")
        _check_estimate(budget.text_size(parts) + len(str(sep)) * len(parts), name)
        return parts
    elif name == "format" and isinstance(value, str):
        check_printf(budget, value, named.get("args", ()) or named.get("kwargs", {}))
    elif name in ("batch", "slice"):
        count = named.get("linecount", named.get("slices"))
        if isinstance(count, int) and count > MAX_ITEMS:
            raise RenderLimit(f"{name}({count:,}) makes more than {MAX_ITEMS:,} items")
    return value


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(times, int) and isinstance(seq, str | bytes):
            if len(seq) * times > MAX_VALUE_CHARS:
                raise RenderLimit(too_long(len(seq) * times))
        elif isinstance(times, int) and isinstance(seq, list | tuple):
            if len(seq) * times > MAX_ITEMS:
                raise RenderLimit(f"repetition builds a list of more than {MAX_ITEMS:,} items")
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise RenderLimit(f"multiplication makes an integer of more than {MAX_INT_BITS} bits")


def check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    """``left <operator> right`` (one of ``+ * ** %``) stays within the limits."""
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if left.bit_length() * right > MAX_INT_BITS:
                raise RenderLimit(
                    f"exponent {right} makes an integer of more than {MAX_INT_BITS} bits"
                )
    elif operator == "*":
        _check_repeat(left, right)
    elif operator == "+":
        if isinstance(left, str | bytes) and isinstance(right, str | bytes):
            if len(left) + len(right) > MAX_VALUE_CHARS:
                raise RenderLimit(too_long(len(left) + len(right)))
        elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
            if len(left) + len(right) > MAX_ITEMS:
                raise RenderLimit(f"the template builds a list of more than {MAX_ITEMS:,} items")
    elif operator == "%" and isinstance(left, str | bytes):
        check_printf(budget, left, right)
