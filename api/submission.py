"""A submit over HTTP: the CLI's ``submit`` with the tenant, its cap, the webhook and the
idempotent answer recorded in the batch's own transaction."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api import idempotency
from api.auth import Caller
from api.links import Links
from api.problems import ApiProblem
from api.ratelimit import take_submit
from api.uploads import JSON_MANIFEST, JSON_ROWS, Upload, bad
from models.db import session_scope
from models.queries import tenants as tenant_queries
from models.queries import webhooks as webhook_queries
from models.tables import Batch
from scheduler.submit import Submission, submit
from scheduler.webhooks import check_webhook_url
from stencil.catalog import micros_to_usd
from stencil.errors import FetchRefused, ManifestError, Problem
from stencil.settings import Settings


def run_submit(
    request: Request, caller: Caller, upload: Upload, *, dry_run: bool, force: bool
) -> Response:
    settings: Settings = request.app.state.settings
    links = Links.of(request)
    events = _webhook(upload, settings)
    slot = idempotency.begin(request, caller, upload.digest)
    if isinstance(slot, Response):
        return slot
    answer: dict[str, str] = {}

    def record(session: Session, sub: Submission) -> None:
        batch = session.get(Batch, sub.batch_id)
        assert batch is not None
        _within_cap(session, caller.tenant_id, batch)
        batch.tenant_id = caller.tenant_id
        batch.source = f"http: {upload.shown_name}"
        if upload.webhook_url:
            endpoint = webhook_queries.endpoint_for(
                session=session, tenant_id=caller.tenant_id, url=upload.webhook_url
            )
            webhook_queries.subscribe(
                session=session, batch_id=batch.id, endpoint_id=endpoint.id, events=events
            )
        session.flush()
        answer["text"] = idempotency.dumps(accepted(sub, batch, links, upload))
        slot.finish(session, 202, answer["text"])

    try:
        take_submit(caller, settings)
        try:
            sub = submit(
                upload.manifest,
                options=replace(upload.options, reuse_scope=caller.tenant_id),
                settings=settings,
                force=force,
                dry_run=dry_run,
                s3_refs=False,
                on_insert=record,
            )
        except ManifestError as exc:
            raise ManifestError([shown(p, upload) for p in exc.problems]) from None
        if dry_run:
            text = idempotency.dumps(dry_run_body(sub))
            with session_scope() as session:
                slot.finish(session, 200, text)
            return Response(text, status_code=200, media_type=idempotency.JSON)
    except BaseException:
        slot.release()
        raise
    return Response(answer["text"], status_code=202, media_type=idempotency.JSON)


def _webhook(upload: Upload, settings: Settings) -> list[str]:
    """The events asked for (all by default); the URL checked like a reference URL."""
    events = upload.webhook_events
    if events is None:
        events = list(webhook_queries.EVENTS)
    if not isinstance(events, list) or not all(e in webhook_queries.EVENTS for e in events):
        raise bad(
            f"must be a list of events among {', '.join(webhook_queries.EVENTS)}",
            fld="webhook_events",
            file=upload.shown_name,
        )
    url = upload.webhook_url
    if url is None:
        return events
    if not isinstance(url, str) or len(url) > 2000:
        raise bad("must be an https URL", fld="webhook_url", file=upload.shown_name)
    try:
        check_webhook_url(url, settings=settings)
    except FetchRefused as exc:
        raise bad(str(exc), fld="webhook_url", file=upload.shown_name) from exc
    return events


def _within_cap(session: Session, tenant_id: str, batch: Batch) -> None:
    """A tenant's spending cap: the request's budget becomes at most what the cap has left
    (the batch budget's reserve-then-settle then holds it); 402 when its estimate does not fit."""
    tenant = tenant_queries.get_tenant(session=session, tenant_id=tenant_id, lock=True)
    if tenant is None or tenant.spend_cap_micros is None:
        return
    committed = tenant_queries.committed_micros(session=session, tenant_id=tenant_id)
    left = max(0, tenant.spend_cap_micros - committed)
    if batch.estimated_micros > left:
        raise ApiProblem(
            402,
            f"the tenant's spending cap of ${micros_to_usd(tenant.spend_cap_micros):.2f} has "
            f"${micros_to_usd(left):.4f} left; this request is estimated at "
            f"${micros_to_usd(batch.estimated_micros):.4f}; nothing was submitted",
        )
    batch.budget_micros = left if batch.budget_micros is None else min(batch.budget_micros, left)


def shown(problem: Problem, upload: Upload) -> Problem:
    """A problem's place as the client knows it: uploaded names, or ``body`` and ``rows[i]``."""
    prefix = f"{upload.folder}/"
    file = problem.file.replace(prefix, "")
    message = problem.message.replace(prefix, "")
    row, fld = problem.row, problem.field
    if upload.from_json:
        if file == JSON_ROWS and row is not None:
            row -= 1  # a line of rows.jsonl is an index of the body's rows
            fld = f"rows[{row}]" + (f".{fld}" if fld else "")
        file = "body" if file in (JSON_MANIFEST, JSON_ROWS) else file
    return Problem(file=file, message=message, row=row, field=fld)


def accepted(sub: Submission, batch: Batch, links: Links, upload: Upload) -> dict[str, Any]:
    summary = sub.summary()
    del summary["samples"]
    return {
        "request_id": batch.id,
        "status": batch.status,
        **links.request_urls(batch.id),
        **summary,
        # the tenant's cap may have lowered the budget the manifest asked for
        "budget_usd": None if batch.budget_micros is None else micros_to_usd(batch.budget_micros),
        "webhook_url": upload.webhook_url,
        "created_at": batch.created_at.isoformat(),
    }


def dry_run_body(sub: Submission) -> dict[str, Any]:
    return {"dry_run": True, **sub.summary()}
