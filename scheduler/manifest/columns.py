"""A row's columns as template values: scalars only, and none named like Stencil's own values.

Templates see each column by name beside the values Stencil adds (:data:`STENCIL_NAMES`). A
column with one of those names would be silently replaced, so it is a problem instead; the one
exception is a ``key`` column whose value *is* the row's key (the CSV form's key column, or a
YAML key template that renders it unchanged). A value must be text, a number, a boolean, a date
or empty: a list or mapping would be printed as Python's ``repr`` into a prompt or a path.
"""

from __future__ import annotations

import datetime
from typing import Any

from scheduler.manifest.budget import MAX_INT_BITS, MAX_VALUE_CHARS
from scheduler.manifest.problems import shown
from scheduler.manifest.rows import MAX_COLUMN_CHARS

STENCIL_NAMES = {
    "batch": "the batch id",
    "row": "the row's number",
    "key": "the row's rendered key",
    "variant": "the variant number",
}
SCALARS = (str, int, float, bool, datetime.date, type(None))


def value_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """``(column, message)`` for each column whose name or value cannot be used."""
    found: list[tuple[str, str]] = []
    for column, value in values.items():
        if len(column) > MAX_COLUMN_CHARS:
            found.append((column[:40] + "...", f"a column's name may have {MAX_COLUMN_CHARS} "
                                               "characters at most"))  # fmt: skip
            continue
        if column in STENCIL_NAMES and column != "key":
            found.append((column, shadow_message(column)))
        if not isinstance(value, SCALARS):
            found.append(
                (column, f"the value is {shown(value)}; a row's values must be text, numbers, "
                         "booleans or empty (lists and mappings cannot be used in templates)")
            )  # fmt: skip
        elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            found.append(
                (column, f"the value is {len(value):,} characters; at most {MAX_VALUE_CHARS:,}")
            )
        elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            found.append((column, f"the value is {shown(value)}; at most {MAX_INT_BITS} bits"))
    return found


def shadow_message(column: str) -> str:
    return (
        f"a column named {column!r} would be replaced by Stencil's own {column!r} "
        f"({STENCIL_NAMES[column]}) in templates; rename the column"
    )


def key_column_problem(values: dict[str, Any], key: str) -> str | None:
    """A ``key`` column whose value differs from the row's rendered key, or None."""
    if "key" not in values:
        return None
    value = values["key"]
    if isinstance(value, SCALARS) and str(value).strip() == key:
        return None
    return shadow_message("key") + f" (the column says {shown(value)}, the key is {shown(key)})"
