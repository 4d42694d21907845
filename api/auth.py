"""API keys: made once, stored as a SHA-256 hash, presented as ``Authorization: Bearer <key>``
(or ``Key <key>``, as fal's clients send). Each key belongs to a tenant; every route but health
and signed file links needs one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api.problems import ApiProblem
from models.db import session_scope
from models.queries import tenants as tenant_queries

KEY_PREFIX = "sk_"
SCHEMES = ("bearer", "key")
# documents the header in the OpenAPI schema; the check below reads it itself
_HEADER = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    description="`Bearer <key>` or `Key <key>`, a key made by `stencil keys create`",
)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key and its tenant."""

    key_id: str
    tenant_id: str
    submits_per_minute: int | None


def new_key() -> str:
    """A fresh API key: ``sk_`` and 256 random bits (URL-safe base64)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def presented_key(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() not in SCHEMES or not value or len(value) > 200:
        return None
    return value


def caller(request: Request, _header: Annotated[str | None, Depends(_HEADER)] = None) -> Caller:
    """The caller of this request, or 401."""
    key = presented_key(request.headers.get("authorization"))
    if key is None:
        raise _unauthorized("an API key is required: Authorization: Bearer <key>")
    with session_scope() as session:
        found = tenant_queries.active_key(session=session, key_hash=key_hash(key))
        if found is None:
            raise _unauthorized("the API key is not valid (unknown or revoked)")
        api_key, tenant = found
        return Caller(api_key.id, tenant.id, api_key.submits_per_minute)


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="stencil"'})


CallerDep = Annotated[Caller, Depends(caller)]
