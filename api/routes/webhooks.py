"""Webhooks: a request's deliveries with their attempts, a manual redeliver, the tenant's secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api import idempotency
from api.auth import CallerDep
from api.problems import ApiProblem
from api.schemas import WebhookList, WebhookSecret, problems
from api.tenancy import owned_batch
from models.db import session_scope
from models.queries import tenants as tenant_queries
from models.queries import webhooks as webhook_queries

router = APIRouter(tags=["webhooks"])


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@router.get(
    "/v1/requests/{request_id}/webhooks", response_model=WebhookList, responses=problems(401, 404)
)
def list_deliveries(request_id: str, caller: CallerDep) -> dict[str, Any]:
    """The request's webhook deliveries, oldest first, each with its attempts."""
    with session_scope() as session:
        batch = owned_batch(session, caller, request_id)
        hook = webhook_queries.subscription(session=session, batch_id=batch.id)
        found = webhook_queries.deliveries(session=session, batch_id=batch.id)
        deliveries = [
            {
                "id": d.id,
                "event_type": d.event_type,
                "state": d.state,
                "attempts": d.attempts,
                "url": url,
                "created_at": d.created_at.isoformat(),
                "next_attempt_at": _when(d.next_attempt_at),
                "delivered_at": _when(d.delivered_at),
                "attempt_log": [
                    {
                        "number": a.number,
                        "started_at": a.started_at.isoformat(),
                        "duration_ms": a.duration_ms,
                        "status_code": a.status_code,
                        "error": a.error,
                    }
                    for a in attempts
                ],
            }
            for d, url, attempts in found
        ]
    return {
        "webhook_url": hook[1] if hook else None,
        "webhook_events": list(hook[0].events) if hook else [],
        "deliveries": deliveries,
    }


@router.post(
    "/v1/requests/{request_id}/webhooks/{delivery_id}/redeliver",
    status_code=202,
    responses={202: {"description": "queued for sending now"}, **problems(401, 404)},
)
def redeliver(request: Request, request_id: str, delivery_id: str, caller: CallerDep) -> Response:
    """Send a delivery again now, with the same webhook-id (its endpoint is enabled again)."""

    def act(session: Session) -> tuple[int, dict[str, Any]]:
        batch = owned_batch(session, caller, request_id)
        if not webhook_queries.redeliver(
            session=session, batch_id=batch.id, delivery_id=delivery_id
        ):
            raise ApiProblem(404, f"request {request_id} has no delivery {delivery_id[:60]!r}")
        return 202, {"id": delivery_id, "state": webhook_queries.PENDING}

    return idempotency.run(request, caller, "", act)


@router.get("/v1/webhooks/secret", response_model=WebhookSecret, responses=problems(401))
def secret(caller: CallerDep) -> dict[str, str]:
    """The tenant's signing secret (whsec_...): verify deliveries with any Standard Webhooks
    library."""
    with session_scope() as session:
        tenant = tenant_queries.get_tenant(session=session, tenant_id=caller.tenant_id)
        assert tenant is not None
        return {"secret": tenant.webhook_secret}
