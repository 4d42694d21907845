"""``Idempotency-Key`` on POSTs, with Stripe's semantics.

- The same key with the same request (method, path, query and body) replays the first answer:
  its status and its exact body, with ``Idempotent-Replayed: true``.
- The same key with a different request is 422; while the first is still being processed, 409
  (with ``Retry-After``: clients such as fal's retry on 409).
- Only successful answers are kept, written in the transaction of the change they report (a
  submit's batch and its answer commit together). A request that changed nothing (bad input, a
  failure) releases its key, so the client can fix it and send it again with the same key.
- Keys are kept 24 hours; a key still "processing" after 10 minutes belonged to a process that
  died (nothing was committed with it) and is taken by the next request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.auth import Caller
from api.problems import ApiProblem
from models.base import utcnow
from models.db import session_scope
from models.queries import idempotency as idempotency_queries

HEADER = "Idempotency-Key"
MAX_KEY = 255
KEEP = timedelta(hours=24)
ABANDONED = timedelta(minutes=10)
JSON = "application/json"


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def request_fingerprint(request: Request, content: str) -> str:
    """What makes two requests the same: method, path, sorted query and a digest of the body."""
    query = sorted(request.query_params.multi_items())
    text = json.dumps([request.method, request.url.path, query, content])
    return hashlib.sha256(text.encode()).hexdigest()


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass
class Slot:
    """A claimed key (or none, when the request carried no key)."""

    tenant_id: str
    key: str | None

    def finish(self, session: Session, status: int, text: str) -> None:
        if self.key is not None:
            idempotency_queries.finish(
                session=session, tenant_id=self.tenant_id, key=self.key, status_code=status,
                body=text,
            )  # fmt: skip

    def release(self) -> None:
        if self.key is None:
            return
        with session_scope() as session:
            idempotency_queries.release(session=session, tenant_id=self.tenant_id, key=self.key)


def begin(request: Request, caller: Caller, content: str) -> Slot | Response:
    """Claim the request's key; a replayed answer, or a 409/422 problem, when it cannot."""
    key = request.headers.get(HEADER)
    if key is None:
        return Slot(caller.tenant_id, None)
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise ApiProblem(400, f"{HEADER} must be 1 to {MAX_KEY} printable characters (a UUID, say)")
    with session_scope() as session:
        claim = idempotency_queries.claim(
            session=session,
            tenant_id=caller.tenant_id,
            key=key,
            fingerprint=request_fingerprint(request, content),
            now=utcnow(),
            keep=KEEP,
            abandoned=ABANDONED,
        )
    if claim.outcome == "new":
        return Slot(caller.tenant_id, key)
    if claim.outcome == "replay":
        return Response(
            claim.body or "",
            status_code=claim.status_code or 200,
            media_type=JSON,
            headers={"Idempotent-Replayed": "true"},
        )
    if claim.outcome == "mismatch":
        raise ApiProblem(
            422, f"this {HEADER} was already used with a different request; use a new key"
        )
    raise ApiProblem(
        409,
        f"the first request with this {HEADER} is still being processed; try again shortly",
        headers={"Retry-After": "1"},
    )


def run(
    request: Request,
    caller: Caller,
    content: str,
    action: Callable[[Session], tuple[int, dict[str, Any]]],
) -> Response:
    """Run ``action`` in one transaction, idempotently when the request carries a key."""
    slot = begin(request, caller, content)
    if isinstance(slot, Response):
        return slot
    try:
        with session_scope() as session:
            status, body = action(session)
            text = dumps(body)
            if 200 <= status < 300:
                slot.finish(session, status, text)
    except BaseException:
        slot.release()
        raise
    if not 200 <= status < 300:
        slot.release()
    return Response(text, status_code=status, media_type=JSON)
