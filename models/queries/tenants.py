"""Queries on tenants and their API keys: create, find by key hash, revoke, rate, list batches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from models.api_tables import ApiKey, Tenant
from models.base import utcnow
from models.tables import Batch


def add_tenant(
    *, session: Session, tenant_id: str, name: str, webhook_secret: str, spend_cap: int | None
) -> Tenant:
    tenant = Tenant(
        id=tenant_id,
        name=name,
        webhook_secret=webhook_secret,
        spend_cap_micros=spend_cap,
        created_at=utcnow(),
    )
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(*, session: Session, tenant_id: str, lock: bool = False) -> Tenant | None:
    query = select(Tenant).where(Tenant.id == tenant_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def add_key(
    *,
    session: Session,
    key_id: str,
    tenant_id: str,
    name: str,
    prefix: str,
    key_hash: str,
    submits_per_minute: int | None,
) -> ApiKey:
    key = ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        submits_per_minute=submits_per_minute,
        rate_window=0,
        rate_count=0,
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    return key


def active_key(*, session: Session, key_hash: str) -> tuple[ApiKey, Tenant] | None:
    """The unrevoked key with this hash and its tenant."""
    row = session.execute(
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    ).first()
    return None if row is None else (row[0], row[1])


def list_keys(*, session: Session) -> Sequence[tuple[ApiKey, Tenant]]:
    rows = session.execute(
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .order_by(ApiKey.created_at, ApiKey.id)
    ).all()
    return [(key, tenant) for key, tenant in rows]


def revoke_key(*, session: Session, key_id: str, now: datetime | None = None) -> bool:
    """Revoke a key by id; True when it was active until now."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def take_submit(*, session: Session, key_id: str, minute: int, limit: int) -> bool:
    """Count one submit in this key's current minute; False when the minute's limit is used up.

    One conditional UPDATE, so concurrent submits (any number of API processes) cannot pass the
    limit together.
    """
    result = session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.rate_window != minute, ApiKey.rate_count < limit),
        )
        .values(
            rate_count=case((ApiKey.rate_window == minute, ApiKey.rate_count + 1), else_=1),
            rate_window=minute,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def tenant_batches(
    *,
    session: Session,
    tenant_id: str,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Sequence[Batch]:
    """A tenant's batches, newest first; page with ``before`` = the last (created_at, id) seen."""
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    if before is not None:
        created, batch_id = before
        query = query.where(
            or_(
                Batch.created_at < created,
                and_(Batch.created_at == created, Batch.id < batch_id),
            )
        )
    return session.scalars(
        query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit)
    ).all()


def committed_micros(*, session: Session, tenant_id: str) -> int:
    """What a tenant's requests have spent or may still spend: a closed request its spend; an
    open one its budget (a hard cap), or without one the larger of its estimate and its spend."""
    batches = session.execute(
        select(
            Batch.spent_micros,
            Batch.reserved_micros,
            Batch.estimated_micros,
            Batch.budget_micros,
            Batch.finished_at,
        ).where(Batch.tenant_id == tenant_id)
    ).all()
    total = 0
    for spent, reserved, estimated, budget, finished in batches:
        used = spent + reserved
        if finished is not None:
            total += used
        else:
            total += max(used, budget if budget is not None else estimated)
    return total
