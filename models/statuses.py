"""Status values of batches, items and attempts."""

from __future__ import annotations

from enum import StrEnum


class BatchStatus(StrEnum):
    """Where a batch stands."""

    running = "running"  # has items not yet ended; dispatch may pick them
    paused = "paused"  # dispatch skips it; in-flight calls finish
    stopped = "stopped"  # dispatch stopped for a reason (auth failure); see stop_reason
    cancelled = "cancelled"  # the user cancelled it; in-flight results are kept
    done = "done"  # every item has ended


class ItemStatus(StrEnum):
    """Where one item (one image of one row) stands."""

    queued = "queued"  # waiting for dispatch (after not_before, if set)
    dispatched = "dispatched"  # its id is on the broker; no worker has taken it yet
    running = "running"  # a worker holds its lease and has an attempt open
    waiting = "waiting"  # an identical item (same fingerprint) is being generated: reused_from
    # a chained item (scheduler/chains.py): waits for the image of an item of its batch that it
    # uses as a reference; never dispatched, holds no window slot, until that item succeeds
    pending_deps = "pending_deps"
    succeeded = "succeeded"  # the image is in storage
    failed = "failed"  # a failure that retrying will not fix, or retries exhausted
    blocked = "blocked"  # the model refused it for safety; reason kept
    no_image = "no_image"  # the model answered without an image, retries exhausted
    cancelled = "cancelled"  # cancelled before it was called
    budget_exhausted = "budget_exhausted"  # the batch budget could not cover it
    dependency_failed = "dependency_failed"  # an item it depends on ended without an image

    @property
    def ended(self) -> bool:
        return self in ENDED_ITEM


ENDED_ITEM = frozenset(
    {
        ItemStatus.succeeded,
        ItemStatus.failed,
        ItemStatus.blocked,
        ItemStatus.no_image,
        ItemStatus.cancelled,
        ItemStatus.budget_exhausted,
        ItemStatus.dependency_failed,
    }
)
IN_FLIGHT_ITEM = frozenset({ItemStatus.dispatched, ItemStatus.running})


class AttemptState(StrEnum):
    """The outcome of one call to the provider."""

    calling = "calling"  # committed before the paid call; not yet resolved
    succeeded = "succeeded"  # an image came back and is stored
    rate_limited = "rate_limited"  # 429; retried later
    transient = "transient"  # 5xx, connection error or timeout; retried with backoff
    invalid = "invalid"  # 400 or 404: the request cannot succeed
    auth = "auth"  # 401/403: credentials refused; the batch stops
    blocked = "blocked"  # safety block (finishReason or promptFeedback.blockReason)
    no_image = "no_image"  # 200 without an image part
    outcome_unknown = "outcome_unknown"  # the worker died mid-call and no image was stored
    # paid, but storage would not take the image: it is held in the worker's spool, and the
    # item's next start stores those bytes instead of calling again (cost stays on this attempt)
    unstored = "unstored"
    superseded = "superseded"  # a newer attempt owns the item; this result was not applied


class ReviewMark(StrEnum):
    """A reviewer's verdict on an item's image."""

    approved = "approved"  # keep it
    rejected = "rejected"  # regenerate it with `stencil retry --rejected`


class QaState(StrEnum):
    """The automatic checks of an item's image (worker/checks), apart from its status."""

    pending = "pending"  # checks configured; they run once the image is stored
    passed = "passed"  # every check passed
    failed = "failed"  # a check failed: qa_note says which and why
