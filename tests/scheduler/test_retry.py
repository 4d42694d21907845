from __future__ import annotations

import random

import pytest

from models.statuses import AttemptState, ItemStatus
from scheduler.retry import RATE_LIMIT_MAX_ATTEMPTS, backoff_s, next_step
from stencil.settings import Settings

SETTINGS = Settings(max_attempts=4, no_image_retries=1, backoff_base_s=1.0, backoff_cap_s=8.0)


def test_backoff_is_full_jitter_truncated_at_the_cap() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        draws = [backoff_s(attempt, base_s=1.0, cap_s=8.0, rng=rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.8  # spread over the whole range, not a fixed delay


@pytest.mark.parametrize(
    ("state", "attempts", "no_image", "expected"),
    [
        (AttemptState.succeeded, 1, 0, ItemStatus.succeeded),
        (AttemptState.transient, 1, 0, ItemStatus.queued),
        (AttemptState.transient, 4, 0, ItemStatus.failed),
        (AttemptState.outcome_unknown, 2, 0, ItemStatus.queued),
        (AttemptState.rate_limited, 10, 0, ItemStatus.queued),
        (AttemptState.rate_limited, RATE_LIMIT_MAX_ATTEMPTS, 0, ItemStatus.failed),
        (AttemptState.invalid, 1, 0, ItemStatus.failed),
        (AttemptState.blocked, 1, 0, ItemStatus.blocked),
        (AttemptState.no_image, 1, 1, ItemStatus.queued),
        (AttemptState.no_image, 2, 2, ItemStatus.no_image),
        (AttemptState.auth, 1, 0, ItemStatus.queued),
    ],
)
def test_next_step(state: AttemptState, attempts: int, no_image: int, expected: ItemStatus) -> None:
    step = next_step(
        state, attempts=attempts, no_image_count=no_image, message="why", settings=SETTINGS
    )
    assert step.status is expected
    if expected is ItemStatus.failed and state is AttemptState.transient:
        assert "gave up after 4 attempts" in (step.message or "")


def test_rate_limit_pause_is_short() -> None:
    for _ in range(50):
        step = next_step(
            AttemptState.rate_limited,
            attempts=12,
            no_image_count=0,
            message=None,
            settings=SETTINGS,
        )
        assert 0 <= step.delay_s <= 2.0
