"""Control: cancel, pause, resume and retry a request (cancel and retry also take an item id).

Each is the CLI's own function (``scheduler/control.py``) in one transaction; ``Idempotency-Key``
replays the first answer.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import idempotency
from api.auth import CallerDep
from api.problems import ApiProblem
from api.schemas import ControlAnswer, RetryFilter, problems
from api.tenancy import owned_batch, owned_batch_of
from scheduler import control

router = APIRouter(prefix="/v1/requests", tags=["control"])
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": ControlAnswer},
    **problems(401, 404, 409, 422),
}
RETRY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": RetryFilter.model_json_schema()}},
    }
}


@router.post("/{request_id}/cancel", responses=ANSWERS)
def cancel(request: Request, request_id: str, caller: CallerDep) -> Response:
    """Cancel a request or an item: queued work ends at once; calls in flight finish and are
    kept."""

    def act(session: Session) -> tuple[int, dict[str, Any]]:
        owned_batch_of(session, caller, request_id)
        return 200, asdict(control.cancel(session=session, request_id=request_id))

    return idempotency.run(request, caller, "", act)


@router.post("/{request_id}/pause", responses=ANSWERS)
def pause(request: Request, request_id: str, caller: CallerDep) -> Response:
    """Stop dispatching a request; calls in flight finish."""

    def act(session: Session) -> tuple[int, dict[str, Any]]:
        owned_batch(session, caller, request_id)
        return 200, asdict(control.pause(session=session, request_id=request_id))

    return idempotency.run(request, caller, "", act)


@router.post("/{request_id}/resume", responses=ANSWERS)
def resume(request: Request, request_id: str, caller: CallerDep) -> Response:
    """Resume a paused request, or one stopped by refused credentials."""

    def act(session: Session) -> tuple[int, dict[str, Any]]:
        owned_batch(session, caller, request_id)
        return 200, asdict(control.resume(session=session, request_id=request_id))

    return idempotency.run(request, caller, "", act)


@router.post("/{request_id}/retry", responses=ANSWERS, openapi_extra=RETRY_BODY)
async def retry(request: Request, request_id: str, caller: CallerDep) -> Response:
    """Requeue ended items as new attempts: `{"failed": true, "blocked": true, "no_image": true,
    "rejected": true, "qa_failed": true}` choose which (none: every unsuccessful one), as the
    CLI's flags; `qa_failed` regenerates the items whose automatic checks failed."""
    raw = await request.body()
    chosen = _filter(raw)
    kinds = [k for k in ("failed", "blocked", "no_image") if getattr(chosen, k)]

    def act(session: Session) -> tuple[int, dict[str, Any]]:
        owned_batch_of(session, caller, request_id)
        result = control.retry(
            session=session,
            request_id=request_id,
            kinds=kinds,
            rejected=chosen.rejected,
            qa_failed=chosen.qa_failed,
        )
        return 200, asdict(result)

    return await run_in_threadpool(
        idempotency.run, request, caller, idempotency.body_digest(raw), act
    )


def _filter(raw: bytes) -> RetryFilter:
    if len(raw) > 10_000:
        raise ApiProblem(413, "the body is larger than 10000 bytes")
    if not raw.strip():
        return RetryFilter()
    try:
        return RetryFilter.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        problems = [
            {
                "file": "body",
                "row": None,
                "field": ".".join(str(p) for p in e.get("loc", ())) or None,
                "message": str(e.get("msg")),
            }
            for e in (exc.errors() if isinstance(exc, ValidationError) else [{"msg": str(exc)}])
        ]
        raise ApiProblem(422, "the request is not valid", problems=problems) from exc
