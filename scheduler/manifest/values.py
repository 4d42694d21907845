"""Checks of single option values, shared by the template level and per-row override columns.

Each check returns ``(value, None)`` when the value is good, or ``(None, message)``.
"""

from __future__ import annotations

import math
from typing import Any

from scheduler.manifest.problems import shown
from stencil.catalog import MODELS, ModelSpec

MAX_VARIANTS = 8
MAX_PRIORITY = 9
MAX_BUDGET_USD = 100_000  # a batch's cap; more is a typo (or an exponent) rather than a plan


def is_blank(value: Any) -> bool:
    """An absent override: None or an empty (whitespace-only) cell."""
    return value is None or (isinstance(value, str) and not value.strip())


def check_aspect_ratio(value: Any, spec: ModelSpec) -> tuple[str | None, str | None]:
    if isinstance(value, int) and not isinstance(value, bool):
        return None, 'must be a quoted string like "4:5" (unquoted, YAML reads 4:5 as a number)'
    if not isinstance(value, str) or value.strip() not in spec.aspect_ratios:
        choices = " ".join(spec.aspect_ratios)
        return (
            None,
            f"{shown(value)} is not an aspect ratio of {spec.name}; choose one of {choices}",
        )
    return value.strip(), None


def check_image_size(value: Any, spec: ModelSpec) -> tuple[str | None, str | None]:
    if not spec.image_sizes:
        return None, f"{spec.name} takes no image_size; remove it"
    text = value.strip() if isinstance(value, str) else value
    if text not in spec.image_sizes:
        choices = " ".join(spec.image_sizes)
        return None, f"{shown(value)} is not an image size of {spec.name}; choose one of {choices}"
    return str(text), None


def check_variants(value: Any) -> tuple[int | None, str | None]:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= MAX_VARIANTS:
        return None, f"variants must be an integer from 1 to {MAX_VARIANTS}, not {shown(value)}"
    return number, None


def check_priority(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_PRIORITY:
        return value, None
    return None, f"priority must be an integer from 0 to {MAX_PRIORITY}, not {shown(value)}"


def check_budget(value: Any) -> tuple[float | None, str | None]:
    """A budget in USD: a finite number above 0 and at most :data:`MAX_BUDGET_USD`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return None, f"budget_usd must be a finite number, not {shown(value)}"
        if value > MAX_BUDGET_USD:
            return None, (
                f"budget_usd {shown(value)} is above the maximum of ${MAX_BUDGET_USD:,}; "
                "is a digit or an exponent too many?"
            )
        if value > 0:
            return float(value), None
    return None, f"budget_usd must be a number greater than 0, not {shown(value)}"


def check_model(value: Any) -> tuple[str | None, str | None]:
    """A model id Stencil knows (its prices and limits are in the catalog)."""
    if isinstance(value, str) and value.strip() in MODELS:
        return value.strip(), None
    known = ", ".join(MODELS)
    return None, f"{shown(value)} is not a model Stencil knows; choose one of {known}"


def check_text(value: Any, what: str) -> tuple[str | None, str | None]:
    if isinstance(value, str) and value.strip():
        return value.strip(), None
    return None, f"{what} must be a non-empty string, not {shown(value)}"
