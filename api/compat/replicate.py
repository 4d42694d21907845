"""Replicate's predictions, as the ``replicate`` client speaks them (``Client(base_url=...)``).

``POST /v1/models/{owner}/{name}/predictions`` and ``POST /v1/predictions`` (``version`` naming a
model: ``owner/name[:version]``) create; ``Prefer: wait[=n]`` holds the answer up to n seconds
(60 when no n), then answers ``starting`` if the prediction has not ended (``replicate.run``
polls only a ``starting`` answer). ``GET /v1/predictions/{id}``, ``POST .../cancel`` and
``GET /v1/predictions`` (``{previous, next, results}``, ``next`` a full URL). Statuses:
starting, processing, succeeded, failed, canceled. ``webhook`` subscribes a Stencil webhook
(Standard Webhooks, the tenant's secret: ``replicate.webhook.Webhooks.validate`` verifies it;
its body is Stencil's event, not a prediction); ``webhook_events_filter`` without ``completed``
subscribes nothing, since only the end of a request is sent.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Caller, CallerDep
from api.compat import single
from api.compat.models_map import stencil_model
from api.links import Links
from api.presenters import encode_cursor
from api.routes.requests import _batch_cursor
from api.uploads import bad
from models.db import session_scope
from models.queries import tenants as tenant_queries
from models.tables import Batch

router = APIRouter(prefix="/v1", tags=["compat: replicate"])
SERVICE = "replicate"
VERSION = "stencil"
MAX_WAIT_S = 60
POLL_S = 0.25
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait(?:=(\d+))?(?:$|[,;\s])")
STATUS = {
    single.QUEUED: "starting",
    single.RUNNING: "processing",
    single.SUCCEEDED: "succeeded",
    single.FAILED: "failed",
    single.CANCELLED: "canceled",
}


@router.post("/models/{owner}/{name}/predictions", status_code=201)
async def create_for_model(
    request: Request, owner: str, name: str, caller: CallerDep
) -> JSONResponse:
    """Create a prediction of a model (``google/nano-banana``); ``Prefer: wait`` honoured."""
    return await _create(request, caller, f"{owner}/{name}")


@router.post("/predictions", status_code=201)
async def create(request: Request, caller: CallerDep) -> JSONResponse:
    """Create a prediction of a ``version`` (``owner/name`` or ``owner/name:version``)."""
    return await _create(request, caller, None)


async def _create(request: Request, caller: Caller, model_name: str | None) -> JSONResponse:
    body, raw = await single.read_json(request)
    if not isinstance(body, dict):
        raise bad("must be a JSON object with `input`")
    if model_name is None:
        version = body.get("version")
        if not isinstance(version, str) or "/" not in version:
            raise bad("must name a model as owner/name or owner/name:version", fld="version")
        model_name = version.split(":", 1)[0]
    model = stencil_model(model_name, request.app.state.settings)
    inputs = single.read_inputs(body.get("input"), where="input")
    request_id = await single.submit_single(
        request,
        caller,
        name=f"{SERVICE}: {model_name}",
        model=model,
        inputs=inputs,
        raw=raw,
        hook=_hook(body),
    )
    wait_s = _wait_s(request.headers.get("prefer"))
    deadline = time.monotonic() + wait_s
    state = await run_in_threadpool(single.read_state, request, caller, request_id)
    while not state.ended and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        state = await run_in_threadpool(single.read_state, request, caller, request_id)
    answer = prediction(state, Links.of(request))
    if not state.ended:
        answer["status"] = "starting"  # the client polls only a starting answer
    return JSONResponse(answer, status_code=201)


def _hook(body: dict[str, Any]) -> single.Hook:
    url = body.get("webhook")
    wanted = body.get("webhook_events_filter")
    if url is None:
        return single.Hook()
    if isinstance(wanted, list) and "completed" not in wanted:
        return single.Hook()
    return single.Hook(url=url)


def _wait_s(prefer: str | None) -> float:
    if not prefer:
        return 0.0
    found = PREFER_WAIT.search(prefer.lower())
    if found is None:
        return 0.0
    return float(min(MAX_WAIT_S, int(found.group(1)))) if found.group(1) else float(MAX_WAIT_S)


@router.get("/predictions/{prediction_id}")
def get(request: Request, prediction_id: str, caller: CallerDep) -> dict[str, Any]:
    """A prediction."""
    return prediction(single.read_state(request, caller, prediction_id), Links.of(request))


@router.post("/predictions/{prediction_id}/cancel")
def cancel(request: Request, prediction_id: str, caller: CallerDep) -> dict[str, Any]:
    """Cancel a prediction (one that has ended is answered as it is)."""
    _, state = single.cancel(request, caller, prediction_id)
    return prediction(state, Links.of(request))


@router.get("/predictions")
def list_predictions(
    request: Request,
    caller: CallerDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
) -> dict[str, Any]:
    """The tenant's requests as predictions, newest first: ``{previous, next, results}``."""
    links = Links.of(request)
    before = _batch_cursor(cursor) if cursor else None
    with session_scope() as session:
        batches: list[Batch] = list(
            tenant_queries.tenant_batches(
                session=session, tenant_id=caller.tenant_id, before=before, limit=limit + 1
            )
        )
        results = [prediction(single.state_of(session, b, links), links) for b in batches[:limit]]
    following = None
    if len(batches) > limit:
        last = batches[limit - 1]
        token = encode_cursor(f"{last.created_at.isoformat()}|{last.id}")
        following = f"{links.base}/v1/predictions?cursor={token}&limit={limit}"
    return {"previous": None, "next": following, "results": results}


def prediction(state: single.State, links: Links) -> dict[str, Any]:
    view = state.view
    urls = [image["url"] for image in state.images]
    output: Any = None
    if state.phase == single.SUCCEEDED:
        output = urls[0] if len(urls) == 1 else urls
    own = f"{links.base}/v1/predictions/{state.request_id}"
    return {
        "id": state.request_id,
        "model": state.service_model,
        "version": VERSION,
        "status": STATUS[state.phase],
        "input": {"prompt": state.prompt},
        "output": output,
        "logs": "",
        "error": state.error if state.phase in (single.FAILED, single.CANCELLED) else None,
        "metrics": {"cost_usd": view["cost_usd"]},
        "created_at": view["created_at"],
        "started_at": view.get("started_at"),
        "completed_at": view["finished_at"] if state.ended else None,
        "urls": {"get": own, "cancel": f"{own}/cancel", "web": view["status_url"]},
    }
