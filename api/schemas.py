"""The shapes of the API's answers, for the OpenAPI schema (``/openapi.json``, ``/docs``).

Statuses are the record's own: a request (batch) is running, paused, stopped, cancelled or done;
an item is queued, dispatched, running, waiting, succeeded, failed, blocked, no_image, cancelled
or budget_exhausted (``models/statuses.py`` says what each means).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.statuses import BatchStatus, ItemStatus, QaState


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Accepted(_Open):
    """A submitted request (202)."""

    request_id: str
    status: BatchStatus
    status_url: str
    response_url: str = Field(description="the request's items, with image URLs")
    cancel_url: str
    items: int
    reused: int
    estimated_cost_usd: float
    budget_usd: float | None


class DryRun(_Open):
    """What a submit would do (``?dry_run=true``); nothing is written."""

    dry_run: bool
    items: int
    reused: int
    estimated_cost_usd: float
    samples: list[dict[str, Any]]


class Image(BaseModel):
    url: str = Field(description="signed at read time (S3 presigned, or this API's /v1/files)")
    content_type: str


class ItemError(BaseModel):
    kind: str
    message: str | None


class ItemChecks(BaseModel):
    """The automatic checks of an item's image (the manifest's ``template.checks``)."""

    state: QaState
    note: str | None = Field(description="why they failed: each reason, with the text read")


class ItemView(_Open):
    """One item: one image of one row."""

    request_id: str
    kind: str
    batch_id: str
    key: str
    variant: int
    status: ItemStatus
    images: list[Image]
    cost_usd: float
    attempts: int
    error: ItemError | None
    checks: ItemChecks | None = Field(
        None, description="null when the item has no checks; pending until its image is checked"
    )


class RequestView(_Open):
    """A request: status, counts by item status, cost so far, estimate, position, ETA."""

    request_id: str
    name: str
    status: BatchStatus
    stop_reason: str | None
    total: int
    ended: int
    counts: dict[str, int]
    cost_usd: float
    estimated_cost_usd: float
    queue_position: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    eta_s: float | None
    status_url: str
    response_url: str
    cancel_url: str


class ItemPage(BaseModel):
    """A page of items; ``next`` is the URL of the next page, null on the last."""

    results: list[ItemView]
    next: str | None


class RequestSummary(_Open):
    request_id: str
    name: str
    status: BatchStatus
    items: int
    cost_usd: float
    estimated_cost_usd: float
    created_at: str
    finished_at: str | None
    status_url: str


class RequestPage(BaseModel):
    results: list[RequestSummary]
    next: str | None


class ControlAnswer(BaseModel):
    """What a cancel, pause, resume or retry changed."""

    request_id: str
    action: str
    changed: int
    status: str


class RetryFilter(BaseModel):
    """Which ended items to requeue (none set: every unsuccessful one), as the CLI's flags."""

    model_config = ConfigDict(extra="forbid")

    failed: bool = False
    blocked: bool = False
    no_image: bool = False
    rejected: bool = False
    qa_failed: bool = False


class WebhookAttemptView(BaseModel):
    number: int
    started_at: str
    duration_ms: int
    status_code: int | None
    error: str | None


class WebhookDeliveryView(BaseModel):
    id: str = Field(description="the webhook-id header, the same on every attempt")
    event_type: str
    state: str
    attempts: int
    url: str
    created_at: str
    next_attempt_at: str | None
    delivered_at: str | None
    attempt_log: list[WebhookAttemptView]


class WebhookList(BaseModel):
    webhook_url: str | None
    webhook_events: list[str]
    deliveries: list[WebhookDeliveryView]


class WebhookSecret(BaseModel):
    secret: str = Field(description="whsec_...: verifies this tenant's webhook signatures")


class ProblemPlace(BaseModel):
    file: str | None
    row: int | None
    field: str | None
    message: str


class ProblemDoc(BaseModel):
    """RFC 9457 problem details; ``problems`` lists each bad input with its place."""

    type: str
    title: str
    status: int
    detail: str
    problems: list[ProblemPlace] | None = None


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem answers."""
    return {
        code: {"model": ProblemDoc, "content": {"application/problem+json": {}}} for code in codes
    }
