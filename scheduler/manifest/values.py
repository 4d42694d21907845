"""Checks of single option values, shared by the template level and per-row override columns.

Each check returns ``(value, None)`` when the value is good, or ``(None, message)``.
"""

from __future__ import annotations

from typing import Any

from stencil.catalog import ModelSpec

MAX_VARIANTS = 8
MAX_PRIORITY = 9


def is_blank(value: Any) -> bool:
    """An absent override: None or an empty (whitespace-only) cell."""
    return value is None or (isinstance(value, str) and not value.strip())


def check_aspect_ratio(value: Any, spec: ModelSpec) -> tuple[str | None, str | None]:
    if isinstance(value, int) and not isinstance(value, bool):
        return None, 'must be a quoted string like "4:5" (unquoted, YAML reads 4:5 as a number)'
    if not isinstance(value, str) or value.strip() not in spec.aspect_ratios:
        choices = " ".join(spec.aspect_ratios)
        return None, f"{value!r} is not an aspect ratio of {spec.name}; choose one of {choices}"
    return value.strip(), None


def check_image_size(value: Any, spec: ModelSpec) -> tuple[str | None, str | None]:
    if not spec.image_sizes:
        return None, f"{spec.name} takes no image_size; remove it"
    text = value.strip() if isinstance(value, str) else value
    if text not in spec.image_sizes:
        choices = " ".join(spec.image_sizes)
        return None, f"{value!r} is not an image size of {spec.name}; choose one of {choices}"
    return str(text), None


def check_variants(value: Any) -> tuple[int | None, str | None]:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= MAX_VARIANTS:
        return None, f"variants must be an integer from 1 to {MAX_VARIANTS}, not {value!r}"
    return number, None


def check_priority(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PRIORITY:
        return value, None
    return None, f"priority must be an integer from 0 to {MAX_PRIORITY}, not {value!r}"


def check_budget(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        if value == value and value != float("inf"):
            return float(value), None
    return None, f"budget_usd must be a number greater than 0, not {value!r}"


def check_text(value: Any, what: str) -> tuple[str | None, str | None]:
    if isinstance(value, str) and value.strip():
        return value.strip(), None
    return None, f"{what} must be a non-empty string, not {value!r}"
