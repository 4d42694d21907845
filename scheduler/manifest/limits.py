"""What the record can store: text without NULs or lone surrogates, within each column's length.

Lengths are read from the table definitions (``models.tables``), never repeated here. SQLite
would store anything; Postgres refuses a NUL, text that is not UTF-8, and a value longer than a
``varchar(n)`` column, and would fail the whole submit with its SQL. Checking here turns each
into a problem with its place.
"""

from __future__ import annotations

from typing import Any

from models.tables import Batch, Item

ELLIPSIS = "..."


def column_length(column: Any) -> int | None:
    """The length of a ``String(n)`` column (None for unbounded text)."""
    return getattr(column.type, "length", None)


BATCH_NAME = Batch.__table__.c.name
BATCH_MODEL = Batch.__table__.c.model
BATCH_PROVIDER = Batch.__table__.c.provider
ITEM_ROW_LABEL = Item.__table__.c.row_label


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text at all, or None."""
    if "\x00" in value:
        return "contains a NUL character (\\x00), which the database cannot store"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start]
            return f"contains a lone surrogate ({bad!r}), which is not valid Unicode text"
    return None


def column_problem(value: str, column: Any) -> str | None:
    """Why ``value`` cannot be stored in ``column``, or None."""
    problem = text_problem(value)
    if problem:
        return problem
    limit = column_length(column)
    if limit is not None and len(value) > limit:
        return f"is {len(value)} characters long; at most {limit} are allowed"
    return None


def storable(value: str) -> str:
    """``value`` made storable: lone surrogates (undecodable file names) become ``?``, NULs go."""
    if value.isascii():
        return value.replace("\x00", "")
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def fitted(value: str, column: Any, *, keep_end: str = "") -> str:
    """A derived value (a file name, a label) made storable and cut to fit ``column``.

    ``keep_end`` is kept whole at the end (e.g. `` line 12`` of a row label).
    """
    value = storable(value)
    limit = column_length(column)
    if limit is None or len(value) + len(keep_end) <= limit:
        return value + keep_end
    room = max(0, limit - len(keep_end) - len(ELLIPSIS))
    return value[:room] + ELLIPSIS + keep_end
