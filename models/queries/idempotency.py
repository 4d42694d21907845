"""Queries on idempotency keys: claim a key for a first request, finish it, replay or release it.

A claim is an INSERT on the (tenant, key) primary key, so of two concurrent first requests only
one inserts: the other sees the row (``processing`` until the first finishes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.api_tables import IdempotencyKey

PROCESSING = "processing"
DONE = "done"


@dataclass(frozen=True)
class Claim:
    """What a claim found: ``new`` (this request goes ahead), ``replay`` (``status_code`` and
    ``body`` are the first answer), ``mismatch`` (the key was used with another request) or
    ``in_flight`` (the first request with this key is still being processed)."""

    outcome: str
    status_code: int | None = None
    body: str | None = None


def claim(
    *,
    session: Session,
    tenant_id: str,
    key: str,
    fingerprint: str,
    now: datetime,
    keep: timedelta,
    abandoned: timedelta,
) -> Claim:
    """Claim ``key`` for a request with ``fingerprint``. A key older than ``keep`` is forgotten; a
    key still ``processing`` after ``abandoned`` belonged to a process that died and is taken."""
    row = session.get(IdempotencyKey, (tenant_id, key), with_for_update=True)
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    IdempotencyKey(
                        tenant_id=tenant_id,
                        key=key,
                        fingerprint=fingerprint,
                        state=PROCESSING,
                        created_at=now,
                    )
                )
            return Claim("new")
        except IntegrityError:
            row = session.get(IdempotencyKey, (tenant_id, key), with_for_update=True)
            if row is None:  # released meanwhile: the caller may try again
                return Claim("in_flight")
    expired = row.created_at < now - keep
    dead = row.state == PROCESSING and row.created_at < now - abandoned
    if expired or dead:
        row.fingerprint, row.state, row.created_at = fingerprint, PROCESSING, now
        row.status_code = row.body = None
        session.flush()
        return Claim("new")
    if row.fingerprint != fingerprint:
        return Claim("mismatch")
    if row.state == PROCESSING:
        return Claim("in_flight")
    return Claim("replay", row.status_code, row.body)


def finish(*, session: Session, tenant_id: str, key: str, status_code: int, body: str) -> None:
    """Store the first answer (in the transaction of the change it reports, where there is one)."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key)
        .values(state=DONE, status_code=status_code, body=body)
    )


def release(*, session: Session, tenant_id: str, key: str) -> None:
    """Forget a claimed key whose request changed nothing (bad input, a failure)."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id,
            IdempotencyKey.key == key,
            IdempotencyKey.state == PROCESSING,
        )
    )


def prune(*, session: Session, before: datetime) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


def get(*, session: Session, tenant_id: str, key: str) -> IdempotencyKey | None:
    return session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key
        )
    ).first()
