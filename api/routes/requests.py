"""Requests: submit a manifest, poll one, list its items, list the caller's requests."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import CallerDep
from api.links import Links
from api.presenters import (
    bad_cursor,
    decode_cursor,
    encode_cursor,
    item_answer,
    request_view,
    summary,
)
from api.problems import ApiProblem
from api.schemas import Accepted, DryRun, ItemPage, RequestPage, RequestView, problems
from api.submission import run_submit
from api.tenancy import owned_batch
from api.uploads import read_upload
from models.db import session_scope
from models.queries import items as item_queries
from models.queries import tenants as tenant_queries
from models.statuses import ItemStatus

router = APIRouter(prefix="/v1/requests", tags=["requests"])
ITEM_STATUSES = {s.value for s in ItemStatus}
MAX_LIMIT = 1000

SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A manifest's fields (as in YAML; `rows` a list of objects), "
                    "plus optional `webhook_url` and `webhook_events`.",
                    "properties": {
                        "version": {"type": "integer", "enum": [1]},
                        "name": {"type": "string"},
                        "model": {"type": "string"},
                        "provider": {"type": "string"},
                        "key": {"type": "string"},
                        "template": {"type": "object"},
                        "rows": {"type": "array", "items": {"type": "object"}},
                        "output": {"type": "string"},
                        "budget_usd": {"type": "number"},
                        "priority": {"type": "integer"},
                        "webhook_url": {"type": "string"},
                        "webhook_events": {
                            "type": "array",
                            "items": {"enum": ["request.completed", "request.failed"]},
                        },
                    },
                    "required": ["version", "name", "key", "template", "rows"],
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "description": "`manifest` (a YAML or CSV file), an optional rows file and "
                    "reference images, each under the file name the manifest uses; optional "
                    "fields name, model, provider, budget_usd, output, priority, webhook_url, "
                    "webhook_events.",
                    "properties": {"manifest": {"type": "string", "format": "binary"}},
                    "required": ["manifest"],
                }
            },
        },
    }
}


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    openapi_extra=SUBMIT_BODY,
    responses={200: {"model": DryRun, "description": "dry run"}, **problems(401, 402, 409, 413,
               415, 422, 429)},
)  # fmt: skip
async def submit_request(
    request: Request,
    caller: CallerDep,
    dry_run: bool = False,
    force: bool = False,
) -> Response:
    """Submit a manifest (JSON or multipart); 202 with the request id and its URLs at once.

    `?dry_run=true` answers the expansion summary, sample prompts and the estimate, and writes
    nothing. Bad input answers 422 with every problem and its place. `Idempotency-Key` makes a
    retried submit safe."""
    folder = Path(tempfile.mkdtemp(prefix="stencil-api-"))
    try:
        upload = await read_upload(request, folder, caller.tenant_id)
        return await run_in_threadpool(
            run_submit, request, caller, upload, dry_run=dry_run, force=force
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@router.get("", response_model=RequestPage, responses=problems(401, 422))
def list_requests(
    request: Request,
    caller: CallerDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The caller's requests, newest first, a page at a time."""
    links = Links.of(request)
    before = _batch_cursor(cursor) if cursor else None
    with session_scope() as session:
        batches = tenant_queries.tenant_batches(
            session=session, tenant_id=caller.tenant_id, before=before, limit=limit + 1
        )
        results = [summary(b, links) for b in batches[:limit]]
    after = None
    if len(batches) > limit:  # one more than asked for: there is a next page
        last = batches[limit - 1]
        after = encode_cursor(f"{last.created_at.isoformat()}|{last.id}")
    return {"results": results, "next": _next(links, "/v1/requests", after, limit=limit)}


@router.get("/{request_id}", response_model=RequestView, responses=problems(401, 404))
def get_request(request: Request, request_id: str, caller: CallerDep) -> dict[str, Any]:
    """A request's status, counts by item status, cost so far, estimate, queue position, ETA."""
    with session_scope() as session:
        batch = owned_batch(session, caller, request_id)
        return request_view(session, batch, Links.of(request))


@router.get("/{request_id}/items", response_model=ItemPage, responses=problems(401, 404, 422))
def list_items(
    request: Request,
    request_id: str,
    caller: CallerDep,
    status: Annotated[
        list[str] | None, Query(description="item statuses (repeat or comma)")
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    """A request's items in row order, keyset-paged: `{results, next}`."""
    statuses = _statuses(status)
    after = _seq_cursor(cursor) if cursor else -1
    links = Links.of(request)
    with session_scope() as session:
        batch = owned_batch(session, caller, request_id)
        items = item_queries.list_items(
            session=session, batch_id=batch.id, statuses=statuses, after_seq=after, limit=limit + 1
        )
        results = [item_answer(item, batch, links) for item in items[:limit]]
    following = encode_cursor(str(items[limit - 1].seq)) if len(items) > limit else None
    query = {"status": ",".join(statuses)} if statuses else {}
    path = f"/v1/requests/{request_id}/items"
    return {"results": results, "next": _next(links, path, following, limit=limit, **query)}


def _statuses(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    chosen = [s.strip() for v in values for s in v.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in ITEM_STATUSES]
    if unknown:
        raise ApiProblem(
            422,
            "the request is not valid",
            problems=[
                {
                    "file": "request",
                    "row": None,
                    "field": "query.status",
                    "message": f"{unknown[0][:40]!r} is not an item status; statuses are "
                    + ", ".join(sorted(ITEM_STATUSES)),
                }
            ],
        )
    return chosen or None


def _seq_cursor(cursor: str) -> int:
    text = decode_cursor(cursor)
    if not text.isdigit() or len(text) > 12:
        raise bad_cursor()
    return int(text)


def _batch_cursor(cursor: str) -> tuple[datetime, str]:
    created, sep, batch_id = decode_cursor(cursor).partition("|")
    try:
        when = datetime.fromisoformat(created)
    except ValueError as exc:
        raise bad_cursor() from exc
    if not sep or not batch_id or when.tzinfo is None:
        raise bad_cursor()
    return when, batch_id


def _next(links: Links, path: str, cursor: str | None, **query: Any) -> str | None:
    if cursor is None:
        return None
    return f"{links.base}{path}?{urlencode({**query, 'cursor': cursor})}"
