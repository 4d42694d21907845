"""302.AI's async routes for gemini-2.5-flash-image, in the shapes its clients read.

``POST /302/submit/gemini-2.5-flash-image-async`` (``prompt``, ``aspect_ratio``) and
``.../gemini-2.5-flash-image-edit-async`` (``prompt``, ``image_urls``) answer ``{request_id,
status}``. ``GET /302/submit/<route>?request_id=`` answers ``{request_id, status}`` while pending,
``{images: [{url, content_type}]}`` (no ``request_id``: clients read its presence as pending) when
done, and a non-2xx ``{error: {message, type}}`` when failed. ``GET /302/task/{id}/fetch``
answers ``{completed_at, created_at, error, id, model, output, started_at, status}`` as strings.
Auth ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import CallerDep
from api.compat import single
from api.compat.models_map import stencil_model
from api.problems import ApiProblem

router = APIRouter(prefix="/302", tags=["compat: 302.AI"])
SERVICE = "302"
PENDING = {single.QUEUED: "IN_QUEUE", single.RUNNING: "IN_PROGRESS"}
FETCH_STATUS = {
    single.QUEUED: "pending",
    single.RUNNING: "processing",
    single.SUCCEEDED: "succeeded",
    single.FAILED: "failed",
    single.CANCELLED: "canceled",
}


def _error(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


@router.post("/submit/{route}")
async def submit(request: Request, route: str, caller: CallerDep) -> JSONResponse:
    """Submit: ``{request_id, status: IN_QUEUE}``; bad input answers ``{error: {message}}``."""
    try:
        model = stencil_model(route, request.app.state.settings)
        body, raw = await single.read_json(request)
        inputs = single.read_inputs(body)
        request_id = await single.submit_single(
            request, caller, name=f"{SERVICE}: {route}", model=model, inputs=inputs, raw=raw
        )
    except ApiProblem as exc:
        return _error(exc.status, _message(exc), "invalid_request", exc.headers)
    return JSONResponse({"request_id": request_id, "status": "IN_QUEUE"})


@router.get("/submit/{route}")
async def result(request: Request, route: str, request_id: str, caller: CallerDep) -> JSONResponse:
    """Pending: ``{request_id, status}``; done: ``{images}``; failed: non-2xx ``error``."""
    try:
        stencil_model(route, request.app.state.settings)
        state = await run_in_threadpool(single.read_state, request, caller, request_id)
    except ApiProblem as exc:
        return _error(exc.status, _message(exc), "not_found" if exc.status == 404 else "error")
    if not state.ended:
        return JSONResponse({"request_id": request_id, "status": PENDING[state.phase]})
    if state.phase == single.SUCCEEDED:
        images = [{"url": i["url"], "content_type": i["content_type"]} for i in state.images]
        return JSONResponse({"images": images})
    status = 422 if single.content_error(state) else 400 if state.phase == single.CANCELLED else 500
    return _error(status, state.error or "failed", state.error_type or "failed")


@router.get("/task/{task_id}/fetch")
def fetch(request: Request, task_id: str, caller: CallerDep) -> JSONResponse:
    """The generic task view; every field a string."""
    try:
        state = single.read_state(request, caller, task_id)
    except ApiProblem as exc:
        return _error(exc.status, _message(exc), "not_found" if exc.status == 404 else "error")
    view = state.view
    body: dict[str, Any] = {
        "completed_at": (view["finished_at"] or "") if state.ended else "",
        "created_at": view["created_at"],
        "error": state.error or "" if state.phase != single.SUCCEEDED else "",
        "id": state.request_id,
        "model": state.service_model,
        "output": state.images[0]["url"] if state.images else "",
        "started_at": view.get("started_at") or "",
        "status": FETCH_STATUS[state.phase],
    }
    return JSONResponse(body)


def _message(exc: ApiProblem) -> str:
    if exc.problems:
        return "; ".join(f"{p.get('field') or 'body'}: {p['message']}" for p in exc.problems)
    return exc.detail
