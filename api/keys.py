"""API keys and tenants, for `stencil keys create|list|revoke`."""

from __future__ import annotations

import secrets
from typing import Any

from api.auth import key_hash, new_key
from models.db import session_scope
from models.queries import tenants as tenant_queries
from stencil.catalog import micros_to_usd, usd_to_micros
from stencil.errors import InputError, NotFoundError
from stencil.signing import new_webhook_secret

PREFIX_SHOWN = 10


def create_key(
    name: str,
    *,
    tenant_id: str | None = None,
    spend_cap_usd: float | None = None,
    submits_per_minute: int | None = None,
) -> dict[str, Any]:
    """A new key (shown only in this answer) for a new tenant named ``name``, or for an existing
    tenant. The tenant's webhook secret is in the answer too."""
    if not name.strip() or len(name) > 200:
        raise InputError("a key name must be 1 to 200 characters")
    if spend_cap_usd is not None and spend_cap_usd < 0:
        raise InputError("--spend-cap must be zero or more US dollars")
    key = new_key()
    with session_scope() as session:
        if tenant_id is None:
            tenant = tenant_queries.add_tenant(
                session=session,
                tenant_id=f"t_{secrets.token_hex(8)}",
                name=name,
                webhook_secret=new_webhook_secret(),
                spend_cap=None if spend_cap_usd is None else usd_to_micros(spend_cap_usd),
            )
        else:
            found = tenant_queries.get_tenant(session=session, tenant_id=tenant_id)
            if found is None:
                raise NotFoundError(f"no tenant has the id {tenant_id!r}")
            tenant = found
        api_key = tenant_queries.add_key(
            session=session,
            key_id=f"k_{secrets.token_hex(8)}",
            tenant_id=tenant.id,
            name=name,
            prefix=key[:PREFIX_SHOWN],
            key_hash=key_hash(key),
            submits_per_minute=submits_per_minute,
        )
        return {
            "key": key,
            "key_id": api_key.id,
            "tenant": tenant.id,
            "tenant_name": tenant.name,
            "webhook_secret": tenant.webhook_secret,
            "spend_cap_usd": None
            if tenant.spend_cap_micros is None
            else micros_to_usd(tenant.spend_cap_micros),
        }


def list_keys() -> list[dict[str, Any]]:
    with session_scope() as session:
        return [
            {
                "key_id": key.id,
                "name": key.name,
                "prefix": key.prefix + "...",
                "tenant": tenant.id,
                "tenant_name": tenant.name,
                "created_at": key.created_at.isoformat(),
                "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
            }
            for key, tenant in tenant_queries.list_keys(session=session)
        ]


def revoke_key(key_id: str) -> dict[str, Any]:
    with session_scope() as session:
        if not tenant_queries.revoke_key(session=session, key_id=key_id):
            raise NotFoundError(f"no active key has the id {key_id!r}")
    return {"key_id": key_id, "revoked": True}
