"""What happens to an item after an attempt: retry when, or end how.

Backoff is truncated exponential with full jitter (Google's advice for 429 and 5xx). Waiting
items go back to ``queued`` with a ``not_before`` time: no broker countdowns or ETAs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from models.statuses import AttemptState, ItemStatus
from models.tables import Item
from stencil.settings import Settings
from worker.providers.base import ImageResult

RATE_LIMIT_MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Next:
    """The item's next status, and the delay before it may be dispatched again."""

    status: ItemStatus
    delay_s: float = 0.0
    error_kind: str | None = None
    message: str | None = None

    def item_columns(
        self, *, result: ImageResult, no_image_count: int, now: datetime
    ) -> dict[str, Any]:
        """The item's new columns after the attempt that led here (worker and sweeper alike)."""
        values: dict[str, Any] = {
            "status": self.status.value,
            "cost_micros": Item.cost_micros + result.cost_micros,
            "no_image_count": no_image_count,
            "lease_expires_at": None,
            "not_before": now + timedelta(seconds=self.delay_s) if self.delay_s else None,
            "updated_at": now,
            "finished_at": now if self.status.ended else None,
        }
        if self.status is ItemStatus.succeeded:
            values.update(content_type=result.mime, error_kind=None, error_message=None)
        else:
            values.update(error_kind=self.error_kind, error_message=self.message)
        return values


def backoff_s(
    attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Full-jitter backoff: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0, ceiling)


def next_step(
    state: AttemptState,
    *,
    attempts: int,
    no_image_count: int,
    message: str | None,
    settings: Settings,
) -> Next:
    """The item's fate after an attempt ended in ``state`` (its ``attempts`` include this one)."""
    retry_delay = backoff_s(attempts, base_s=settings.backoff_base_s, cap_s=settings.backoff_cap_s)
    match state:
        case AttemptState.succeeded:
            return Next(ItemStatus.succeeded)
        case AttemptState.rate_limited:
            if attempts >= RATE_LIMIT_MAX_ATTEMPTS:
                return Next(
                    ItemStatus.failed,
                    0,
                    "rate_limited",
                    f"still rate limited after {attempts} attempts",
                )
            # 429s are the window's business; a short jittered pause is enough here.
            return Next(ItemStatus.queued, min(retry_delay, 2.0), "rate_limited", message)
        case AttemptState.transient | AttemptState.outcome_unknown:
            if attempts >= settings.max_attempts:
                return Next(
                    ItemStatus.failed,
                    0,
                    state.value,
                    f"gave up after {attempts} attempts: {message}",
                )
            return Next(ItemStatus.queued, retry_delay, state.value, message)
        case AttemptState.unstored:
            # Paid and held in the spool: the next start stores it with no new call. When
            # storage refuses writes the batch is stopped as well; the item waits for resume.
            if attempts >= settings.max_attempts:
                return Next(
                    ItemStatus.failed,
                    0,
                    "unstored",
                    f"gave up storing after {attempts} attempts (the image is kept in the "
                    f"spool; `stencil retry` stores it once storage works): {message}",
                )
            return Next(ItemStatus.queued, retry_delay, "unstored", message)
        case AttemptState.no_image:
            if no_image_count > settings.no_image_retries:
                return Next(ItemStatus.no_image, 0, "no_image", message)
            return Next(ItemStatus.queued, 0, "no_image", message)
        case AttemptState.blocked:
            return Next(ItemStatus.blocked, 0, "blocked", message)
        case AttemptState.auth:
            # Not the item's fault: it waits for the batch to be resumed with working credentials.
            return Next(ItemStatus.queued, 0, "auth", message)
        case _:
            return Next(ItemStatus.failed, 0, state.value, message)
