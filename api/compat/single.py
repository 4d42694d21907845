"""One image request of another service's protocol, as a Stencil request: the inputs become a
one-row manifest (``num_images`` variants) submitted by ``/v1``'s own ``run_submit``, and its
state is read back from the record with ``/v1``'s presenters.

The prompt, reference images, aspect ratio and count go into the row, never into the template,
so nothing a client sends is rendered as Jinja. Reference images are https URLs (fetched by the
guarded fetcher, as in a manifest) or data URIs (written to the submit's private folder). Fields
those services have and Stencil does not use (``output_format``, ``seed``, ...) are ignored, as
those services ignore unknown fields. Like any Stencil request, an identical earlier image (same
model, prompt, references and options) is reused at no cost.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fastapi import Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.links import Links
from api.presenters import item_answer, request_view
from api.problems import ApiProblem
from api.submission import run_submit
from api.tenancy import owned_batch
from api.uploads import JSON_MANIFEST, JSON_ROWS, MAX_JSON_BYTES, Upload, bad, read_capped
from models.db import session_scope
from models.queries import items as item_queries
from models.statuses import BatchStatus, ItemStatus
from models.tables import Batch
from scheduler import control
from scheduler.manifest import SubmitOptions
from scheduler.manifest.keys import DEFAULT_OUTPUT
from stencil.errors import ManifestError

MAX_IMAGES = 8  # num_images
MAX_REFS = 14
KEY = "image"  # the one row's key; the default output template puts the batch id first
DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|jpg|webp));base64,(.*)$", re.DOTALL)
EXT = {"image/png": "png", "image/jpeg": "jpg", "image/jpg": "jpg", "image/webp": "webp"}
IGNORED_RATIOS = {"", "auto", "match_input_image"}
FIELD_NAMES = {"p": "prompt", "aspect_ratio": "aspect_ratio", "variants": "num_images"}


@dataclass(frozen=True)
class Inputs:
    prompt: str
    images: list[str]
    aspect_ratio: str | None
    num_images: int
    images_field: str = "image_urls"  # as the client named them (Replicate: image_input)


def read_inputs(body: Any, *, where: str = "body") -> Inputs:
    """The inputs Stencil uses from a request body (unknown fields are ignored)."""
    if not isinstance(body, dict):
        raise bad("must be a JSON object", file=where)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad("a non-empty prompt is required", fld="prompt", file=where)
    field_name = "image_urls" if "image_urls" in body else "image_input"
    images = body.get(field_name) or []
    if isinstance(images, str):
        images = [images]
    if not isinstance(images, list) or not all(isinstance(u, str) for u in images):
        raise bad("must be a list of https URLs or data URIs", fld=field_name, file=where)
    if len(images) > MAX_REFS:
        raise bad(f"at most {MAX_REFS} reference images", fld=field_name, file=where)
    ratio = body.get("aspect_ratio")
    if ratio is not None and not isinstance(ratio, str):
        raise bad("must be a ratio such as 1:1 or 16:9", fld="aspect_ratio", file=where)
    count = body.get("num_images", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_IMAGES:
        raise bad(f"must be a whole number from 1 to {MAX_IMAGES}", fld="num_images", file=where)
    return Inputs(
        prompt=prompt,
        images=list(images),
        aspect_ratio=None if ratio is None or ratio.strip() in IGNORED_RATIOS else ratio.strip(),
        num_images=count,
        images_field=field_name,
    )


async def read_json(request: Request) -> tuple[Any, bytes]:
    """The body as JSON (``{}`` when empty), capped like ``/v1``'s JSON submits."""
    raw = await read_capped(request, MAX_JSON_BYTES)
    if not raw.strip():
        return {}, raw
    try:
        return json.loads(raw), raw
    except (ValueError, RecursionError) as exc:
        raise bad(f"invalid JSON: {getattr(exc, 'msg', None) or exc}") from exc


@dataclass
class Hook:
    url: str | None = None
    events: list[str] | None = None


async def submit_single(
    request: Request,
    caller: Caller,
    *,
    name: str,
    model: str,
    inputs: Inputs,
    raw: bytes,
    hook: Hook | None = None,
) -> str:
    """Submit through ``/v1``'s path; returns the request id (``Idempotency-Key`` works too)."""
    folder = Path(tempfile.mkdtemp(prefix="stencil-compat-"))
    try:
        upload = _write_upload(folder, caller.tenant_id, name, model, inputs, raw, hook or Hook())
        try:
            response = await run_in_threadpool(
                run_submit, request, caller, upload, dry_run=False, force=False
            )
        except ManifestError as exc:
            raise _in_service_terms(exc, inputs.images_field) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return str(json.loads(bytes(response.body))["request_id"])


def _write_upload(
    folder: Path,
    tenant_id: str,
    name: str,
    model: str,
    inputs: Inputs,
    raw: bytes,
    hook: Hook,
) -> Upload:
    row: dict[str, Any] = {"k": KEY, "p": inputs.prompt, "variants": inputs.num_images}
    if inputs.aspect_ratio is not None:
        row["aspect_ratio"] = inputs.aspect_ratio
    for n, source in enumerate(inputs.images, start=1):
        row[f"i{n}"] = _reference(folder, n, source, inputs.images_field)
    template: dict[str, Any] = {"prompt": "{{ p }}"}
    if inputs.images:
        template["images"] = [f"{{{{ i{n} }}}}" for n in range(1, len(inputs.images) + 1)]
    manifest = {
        "version": 1,
        "name": name,
        "model": model,
        "key": "{{ k }}",
        "template": template,
        "rows": JSON_ROWS,
        "output": f"{tenant_id}/{DEFAULT_OUTPUT}",
    }
    (folder / JSON_ROWS).write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")
    path = folder / JSON_MANIFEST
    path.write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True), "utf-8")
    described = json.dumps([name, hashlib.sha256(raw).hexdigest(), hook.url, hook.events])
    return Upload(
        folder=folder,
        manifest=path,
        options=SubmitOptions(),
        digest=hashlib.sha256(described.encode()).hexdigest(),
        from_json=True,
        webhook_url=hook.url,
        webhook_events=hook.events,
        shown_name="body",
    )


def _reference(folder: Path, n: int, source: str, images_field: str) -> str:
    """A data URI written to the folder (its file name returned); anything else as given (the
    manifest's checks accept https URLs only)."""
    if not source.startswith("data:"):
        return source
    found = DATA_URI.match(source)
    if found is None:
        raise bad(
            "a data URI must be data:image/png|jpeg|webp;base64,...", fld=f"{images_field}[{n - 1}]"
        )
    try:
        data = base64.b64decode(found.group(2), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise bad("the data URI is not valid base64", fld=f"{images_field}[{n - 1}]") from exc
    name = f"ref-{n}.{EXT[found.group(1)]}"
    (folder / name).write_bytes(data)
    return name


def _in_service_terms(exc: ManifestError, images_field: str) -> ApiProblem:
    """The manifest's problems named by the request's own fields (``prompt``, ``image_urls``)."""
    problems = []
    for p in exc.problems:
        fld = (p.field or "").removeprefix("rows[0].").removeprefix("rows[0]")
        if fld.startswith("i") and fld[1:].isdigit():
            fld = f"{images_field}[{int(fld[1:]) - 1}]"
        elif fld.startswith("template.images["):
            fld = images_field + fld.removeprefix("template.images")
        fld = FIELD_NAMES.get(fld, fld)
        problems.append({"file": "body", "row": None, "field": fld or None, "message": p.message})
    detail = "; ".join(f"{q['field'] or 'body'}: {q['message']}" for q in problems)
    return ApiProblem(422, f"the request is not valid: {detail}"[:1000], problems=problems)


QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
ENDED = (SUCCEEDED, FAILED, CANCELLED)
WORKING = {ItemStatus.running.value, ItemStatus.waiting.value}
CONTENT_ERRORS = {ItemStatus.blocked.value, ItemStatus.no_image.value}


@dataclass
class State:
    """Where a request is, in terms every protocol here can say."""

    request_id: str
    name: str
    model: str
    phase: str  # queued | running | succeeded | failed | cancelled
    queue_position: int
    view: dict[str, Any]
    images: list[dict[str, Any]] = field(default_factory=list)
    prompt: str = ""
    error: str | None = None
    error_type: str | None = None

    @property
    def ended(self) -> bool:
        return self.phase in ENDED

    @property
    def service_model(self) -> str:
        """The model name the client used (``<service>: <name>``), else Stencil's model."""
        _, sep, used = self.name.partition(": ")
        return used if sep else self.model


def read_state(request: Request, caller: Caller, request_id: str) -> State:
    """The request's state (404 when it is not the caller's)."""
    with session_scope() as session:
        batch = owned_batch(session, caller, request_id)
        return state_of(session, batch, Links.of(request))


def state_of(session: Session, batch: Batch, links: Links) -> State:
    view = request_view(session, batch, links)
    items = item_queries.list_items(session=session, batch_id=batch.id, limit=MAX_IMAGES + 1)
    answers = [item_answer(item, batch, links) for item in items]
    images = [image for answer in answers for image in answer["images"]]
    counts: dict[str, int] = view["counts"]
    unsuccessful = [a for a in answers if a["status"] != ItemStatus.succeeded.value and a["error"]]
    error = error_type = None
    if view["status"] == BatchStatus.cancelled.value:
        phase = CANCELLED
        error, error_type = "the request was cancelled", "cancelled"
    elif view["ended"] == view["total"]:
        phase = SUCCEEDED if images else FAILED
    elif view["status"] == BatchStatus.stopped.value:
        phase = FAILED
        error, error_type = f"stopped: {view['stop_reason']}", "stopped"
    elif any(counts.get(s, 0) for s in WORKING):
        phase = RUNNING
    else:
        phase = QUEUED
    if phase == FAILED and error is None:
        first = unsuccessful[0] if unsuccessful else None
        error_type = first["status"] if first else FAILED
        detail = (first["error"]["message"] or first["error"]["kind"]) if first else "no image"
        error = f"{error_type}: {detail}"
    return State(
        request_id=batch.id,
        name=batch.name,
        model=batch.model,
        phase=phase,
        queue_position=int(view.get("queue_position") or 0),
        view=view,
        images=[{**image, "width": None, "height": None} for image in images],
        prompt=items[0].prompt if items else "",
        error=error,
        error_type=error_type,
    )


def content_error(state: State) -> bool:
    """The model refused the content (blocked, no image): the client's input, not our fault."""
    return state.error_type in CONTENT_ERRORS


def cancel(request: Request, caller: Caller, request_id: str) -> tuple[bool, State]:
    """Cancel with ``/v1``'s control; ``(False, state)`` when it had already ended."""
    with session_scope() as session:
        batch = owned_batch(session, caller, request_id)
        state = state_of(session, batch, Links.of(request))
        if state.ended:
            return False, state
        control.cancel(session=session, request_id=batch.id)
        session.flush()
        session.refresh(batch)
        return True, state_of(session, batch, Links.of(request))
