"""Collects every problem of a manifest, so all of them are reported at once."""

from __future__ import annotations

from typing import Any

from stencil.errors import ManifestError, Problem

SHOWN_CHARS = 60  # how much of a bad value a message quotes
KEPT_PROBLEMS = 500  # problems listed in full; the rest are counted


def shown(value: Any) -> str:
    """A short, bounded quotation of a bad value for a message (never the whole of a big one).

    Strings are quoted with ``repr`` (control characters come out escaped) and cut after
    :data:`SHOWN_CHARS`; containers are described by type and size, never expanded.
    """
    if isinstance(value, str):
        if len(value) <= SHOWN_CHARS:
            return repr(value)
        return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"
    if isinstance(value, dict):
        return f"a mapping of {len(value)} entries"
    if isinstance(value, list | tuple | set):
        return f"a list of {len(value)} items"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


class Problems:
    """A list of :class:`Problem` that raises :class:`ManifestError` when asked and not empty."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.dropped = 0  # problems past KEPT_PROBLEMS: counted, not kept

    def add(
        self, file: str, message: str, *, row: int | None = None, field: str | None = None
    ) -> None:
        if len(self.items) >= KEPT_PROBLEMS:
            self.dropped += 1
            return
        self.items.append(Problem(file=file, message=message, row=row, field=field))

    def __len__(self) -> int:
        return len(self.items) + self.dropped

    def raise_if_any(self) -> None:
        if self.items:
            items = list(self.items)
            if self.dropped:
                last = items[-1].file
                items.append(Problem(file=last, message=f"and {self.dropped} more problems"))
            raise ManifestError(items)
