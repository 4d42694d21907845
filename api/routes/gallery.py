"""The review gallery over HTTP: the CLI's contact sheet, with thumbnails and images behind
signed links (so the page works wherever it is opened), and review marks posted back."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import idempotency
from api.auth import CallerDep
from api.links import Links
from api.problems import ApiProblem
from api.schemas import problems
from api.tenancy import owned_batch
from models.db import session_scope
from stencil.gallery import build_gallery
from stencil.gallery.build import UPLOAD_PREFIX
from stencil.review import import_marks, parse_marks
from stencil.storage.base import Storage
from stencil.storage.local import LocalStorage

router = APIRouter(prefix="/v1/requests", tags=["gallery"])
MAX_MARKS_BYTES = 20 * 1024 * 1024


class _SignedLinks:
    """A local store whose URLs are this API's signed file links (not file:// paths)."""

    def __init__(self, storage: Storage, links: Links) -> None:
        self._storage = storage
        self._links = links

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._storage.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        return self._storage.get(key)

    def exists(self, key: str) -> bool:
        return self._storage.exists(key)

    def url(self, key: str, ttl_s: int) -> str:
        return self._links.file_url(key)

    def describe(self) -> str:
        return self._storage.describe()


@router.get(
    "/{request_id}/gallery",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **problems(401, 404)},
)
def gallery(request: Request, request_id: str, caller: CallerDep) -> HTMLResponse:
    """The request's HTML contact sheet: thumbnails, reasons, review buttons (export the marks
    and POST them to `/v1/requests/{id}/reviews`)."""
    links = Links.of(request)
    settings = request.app.state.settings
    storage: Storage = links.storage
    if isinstance(storage, LocalStorage):
        storage = _SignedLinks(storage, links)
    with session_scope() as session:
        batch = owned_batch(session, caller, request_id)
        build_gallery(
            session=session,
            batch_id=batch.id,
            storage=storage,
            out=(settings.data_dir / "api-galleries" / f"{batch.id}.html").resolve(),
            ttl_s=settings.url_ttl_s,
            upload=True,
        )
    page = storage.get(f"{UPLOAD_PREFIX}/{request_id}/index.html")
    return HTMLResponse(page, headers={"Cache-Control": "private, no-store"})


@router.post(
    "/{request_id}/reviews",
    responses={200: {"description": "marks recorded"}, **problems(401, 404, 413, 422)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def reviews(request: Request, request_id: str, caller: CallerDep) -> Response:
    """Record a gallery's exported marks (`{"batch_id", "marks": [...]}`), all or nothing."""
    raw = await request.body()
    if len(raw) > MAX_MARKS_BYTES:
        raise ApiProblem(413, f"the body is larger than {MAX_MARKS_BYTES} bytes")
    try:
        marks = parse_marks(json.loads(raw), source="body")
    except ValueError as exc:
        raise ApiProblem(422, f"body: not JSON ({exc})") from exc
    if marks.batch_id != request_id:
        raise ApiProblem(422, f"body: 'batch_id' is {marks.batch_id!r}, not {request_id!r}")

    def act(session: Session) -> tuple[int, dict[str, Any]]:
        owned_batch(session, caller, request_id)
        return 200, import_marks(session=session, marks_file=marks).as_json()

    return await run_in_threadpool(
        idempotency.run, request, caller, idempotency.body_digest(raw), act
    )
