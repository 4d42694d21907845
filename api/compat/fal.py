"""fal's queue protocol, as ``fal_client`` speaks it (``FAL_QUEUE_RUN_HOST`` pointed here).

``POST /{owner}/{alias}[/{subpath}]`` submits (``?fal_webhook=`` subscribes a Stencil webhook:
Standard Webhooks, signed with the tenant's secret, not fal's own format);
``GET .../requests/{id}/status`` answers IN_QUEUE, IN_PROGRESS or COMPLETED (202 until
completed, then 200; a failed request is COMPLETED with ``error`` and ``error_type``);
``GET .../requests/{id}`` the result ``{images, description}`` or a problem with ``detail``;
``PUT .../requests/{id}/cancel``. Auth ``Authorization: Key <key>`` (or Bearer).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import CallerDep
from api.compat import single
from api.compat.models_map import stencil_model
from api.links import Links
from api.problems import ApiProblem, problem_response

router = APIRouter(tags=["compat: fal"])
SERVICE = "fal"


def _name(owner: str, alias: str, subpath: str | None) -> str:
    return f"{owner}/{alias}" + (f"/{subpath.strip('/')}" if subpath else "")


def _urls(request: Request, owner: str, alias: str, request_id: str) -> dict[str, str]:
    own = f"{Links.of(request).base}/{owner}/{alias}/requests/{request_id}"
    return {"status_url": f"{own}/status", "response_url": own, "cancel_url": f"{own}/cancel"}


@router.post("/{owner}/{alias}")
async def submit(
    request: Request, owner: str, alias: str, caller: CallerDep, fal_webhook: str | None = None
) -> JSONResponse:
    """Submit to a fal app (e.g. ``fal-ai/nano-banana``): ``request_id`` and its URLs at once."""
    return await _submit(request, caller, owner, alias, None, fal_webhook)


@router.post("/{owner}/{alias}/{subpath:path}")
async def submit_sub(
    request: Request,
    owner: str,
    alias: str,
    subpath: str,
    caller: CallerDep,
    fal_webhook: str | None = None,
) -> JSONResponse:
    """Submit to a fal app's sub-path (e.g. ``fal-ai/nano-banana/edit``)."""
    return await _submit(request, caller, owner, alias, subpath, fal_webhook)


async def _submit(
    request: Request,
    caller: Any,
    owner: str,
    alias: str,
    subpath: str | None,
    webhook: str | None,
) -> JSONResponse:
    name = _name(owner, alias, subpath)
    model = stencil_model(name, request.app.state.settings)
    body, raw = await single.read_json(request)
    inputs = single.read_inputs(body)
    request_id = await single.submit_single(
        request,
        caller,
        name=f"{SERVICE}: {name}",
        model=model,
        inputs=inputs,
        raw=raw,
        hook=single.Hook(url=webhook),
    )
    state = await run_in_threadpool(single.read_state, request, caller, request_id)
    return JSONResponse(
        {
            "request_id": request_id,
            "gateway_request_id": request_id,
            **_urls(request, owner, alias, request_id),
            "status": "IN_QUEUE",
            "queue_position": state.queue_position,
        }
    )


@router.get("/{owner}/{alias}/requests/{request_id}/status")
def status(
    request: Request, owner: str, alias: str, request_id: str, caller: CallerDep, logs: str = "0"
) -> JSONResponse:
    """IN_QUEUE (+queue_position), IN_PROGRESS (+logs) or COMPLETED (+logs, metrics, error)."""
    state = single.read_state(request, caller, request_id)
    body: dict[str, Any] = {"request_id": request_id, **_urls(request, owner, alias, request_id)}
    shown_logs = _logs(state) if logs.lower() in ("1", "true") else []
    if state.phase == single.QUEUED:
        body.update(status="IN_QUEUE", queue_position=state.queue_position)
        return JSONResponse(body, status_code=202)
    if state.phase == single.RUNNING:
        body.update(status="IN_PROGRESS", logs=shown_logs)
        return JSONResponse(body, status_code=202)
    body.update(status="COMPLETED", logs=shown_logs, metrics=_metrics(state))
    if state.phase != single.SUCCEEDED:
        body.update(error=state.error, error_type=state.error_type)
    return JSONResponse(body, status_code=200)


@router.get("/{owner}/{alias}/requests/{request_id}")
def result(
    request: Request, owner: str, alias: str, request_id: str, caller: CallerDep
) -> Response:
    """The result: ``{images: [{url, content_type, width, height}], description}``."""
    state = single.read_state(request, caller, request_id)
    if not state.ended:
        raise ApiProblem(400, "the request is still in progress; poll its status_url")
    if state.phase == single.SUCCEEDED:
        return JSONResponse({"images": state.images, "description": "", "seed": None})
    code = 422 if single.content_error(state) else 400 if state.phase == single.CANCELLED else 500
    return problem_response(
        code, state.error or "failed", headers={"x-fal-error-type": state.error_type or "failed"}
    )


@router.put("/{owner}/{alias}/requests/{request_id}/cancel")
def cancel(
    request: Request, owner: str, alias: str, request_id: str, caller: CallerDep
) -> Response:
    """CANCELLATION_REQUESTED (202), ALREADY_COMPLETED (400) or NOT_FOUND (404)."""
    try:
        changed, _ = single.cancel(request, caller, request_id)
    except ApiProblem as exc:
        if exc.status == 404:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        raise
    if not changed:
        return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
    return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)


def _logs(state: single.State) -> list[dict[str, Any]]:
    counts = ", ".join(f"{n} {s}" for s, n in state.view["counts"].items())
    return [
        {
            "message": f"{state.phase}: {counts}",
            "level": "INFO",
            "source": "stencil",
            "timestamp": state.view.get("started_at") or state.view["created_at"],
        }
    ]


def _metrics(state: single.State) -> dict[str, Any]:
    return {"cost_usd": state.view["cost_usd"]}
