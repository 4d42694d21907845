"""A render's budget of work and size, and the limits it enforces.

Every template render gets a fresh allowance of :data:`MAX_STEPS` steps: each loop iteration,
call, filter, intercepted operator and output piece costs one, and each value made costs one
more per :data:`CHARS_PER_STEP` characters, so both time and the total text built are bounded.
A manifest's renders together may take :data:`MAX_TOTAL_STEPS`. Values are capped at
:data:`MAX_VALUE_CHARS` characters, :data:`MAX_ITEMS` items and :data:`MAX_INT_BITS` bits.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, ValuesView
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace

MAX_STEPS = 100_000  # work in one render (about a tenth of a second)
MAX_TOTAL_STEPS = 20_000_000  # work across one manifest
CHARS_PER_STEP = 100  # making a value costs one more step per this many characters
MAX_VALUE_CHARS = 1_000_000  # longest string a template may build
MAX_ITEMS = 100_000  # longest list, range or batch
MAX_INT_BITS = 4_096  # largest integer (about 1,200 digits)
_VIEWS = (KeysView, ValuesView, ItemsView)  # dict.items() etc. print like lists
_CONTAINERS = (dict, list, tuple, set, frozenset, Namespace, *_VIEWS)


class RenderLimit(SecurityError):
    """A template went past its budget of work or size."""


class Budget:
    """The work and size a render may use; :meth:`start` before each render."""

    def __init__(self) -> None:
        self.steps = 0
        self.total = 0

    def start(self) -> None:
        self.steps = 0

    def charge(self, units: int = 1) -> None:
        self.steps += units
        self.total += units
        if self.steps > MAX_STEPS:
            raise RenderLimit(
                f"the template does more than {MAX_STEPS:,} steps of work for one row "
                "(loop iterations, calls, filters, operators); stopped as a runaway template"
            )
        if self.total > MAX_TOTAL_STEPS:
            raise RenderLimit(
                f"the manifest's templates together do more than {MAX_TOTAL_STEPS:,} steps "
                "of work; stopped"
            )

    def made(self, value: Any) -> Any:
        """``value``, charged for and checked against the size limits."""
        if isinstance(value, str | bytes):
            size = len(value)
            if size > MAX_VALUE_CHARS:
                raise RenderLimit(too_long(size))
            self.charge(1 + size // CHARS_PER_STEP)
        elif isinstance(value, list | tuple | dict | set | frozenset):
            if len(value) > MAX_ITEMS:
                raise RenderLimit(f"the template builds a list of more than {MAX_ITEMS:,} items")
            self.charge(1 + len(value) // CHARS_PER_STEP)
        elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise RenderLimit(f"the template builds an integer of more than {MAX_INT_BITS} bits")
        else:
            self.charge(1)
        return value

    def text_size(self, value: Any) -> int:
        """About how many characters ``str(value)`` has, found by walking it (each element is
        charged); raises :class:`RenderLimit` past :data:`MAX_VALUE_CHARS`."""
        if isinstance(value, str | bytes):
            return len(value)
        if not isinstance(value, _CONTAINERS):
            return 24
        total = 0
        stack = [value]
        seen: set[int] = set()  # namespaces, the only containers that can hold themselves
        while stack:
            item = stack.pop()
            if isinstance(item, str | bytes):
                total += len(item) + 2
            elif isinstance(item, dict):
                self.charge(1 + len(item))
                total += 2 + 4 * len(item)
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                self.charge(1 + len(item))
                total += 2 + 2 * len(item)
                stack.extend(item)
            elif isinstance(item, _VIEWS):
                stack.append(list(item))
            elif isinstance(item, Namespace):
                if id(item) not in seen:
                    seen.add(id(item))
                    stack.append(dict(item._Namespace__attrs))  # type: ignore[attr-defined]
            else:
                total += 24
            if total > MAX_VALUE_CHARS:
                raise RenderLimit(too_long(total))
        return total

    def counting(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.charge()
            yield item


def too_long(size: int) -> str:
    return (
        f"the template builds a value of more than {MAX_VALUE_CHARS:,} characters "
        f"(at least {size:,})"
    )


class BoundedBuffer(list[str]):
    """The output buffer of a macro, ``{% set %}`` block, filter or call block: at most
    :data:`MAX_VALUE_CHARS` characters (literal text repeated by a loop is not charged as a
    value, so it is counted here)."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def _grow(self, size: int) -> None:
        self.size += size
        if self.size > MAX_VALUE_CHARS:
            raise RenderLimit(too_long(self.size))

    def append(self, piece: str) -> None:
        self._grow(len(piece) if isinstance(piece, str) else 0)
        super().append(piece)

    def extend(self, pieces: Iterable[str]) -> None:
        pieces = tuple(pieces)
        self._grow(sum(len(p) for p in pieces if isinstance(p, str)))
        super().extend(pieces)


class BudgetedRange:
    """``range`` for templates: at most :data:`MAX_ITEMS` numbers, each charged when iterated."""

    __slots__ = ("_budget", "_range")

    def __init__(self, budget: Budget, numbers: range) -> None:
        try:
            size = len(numbers)
        except OverflowError:
            size = MAX_ITEMS + 1
        if size > MAX_ITEMS:
            raise RenderLimit(f"range of more than {MAX_ITEMS:,} numbers")
        self._budget = budget
        self._range = numbers

    def __iter__(self) -> Iterator[int]:
        return self._budget.counting(self._range)

    def __reversed__(self) -> Iterator[int]:
        return self._budget.counting(reversed(self._range))

    def __len__(self) -> int:
        return len(self._range)

    def __contains__(self, value: object) -> bool:
        return value in self._range

    def __getitem__(self, index: Any) -> Any:
        found = self._range[index]
        return BudgetedRange(self._budget, found) if isinstance(found, range) else found

    def __repr__(self) -> str:
        return repr(self._range)
