"""The HTTP API's part of the record: tenants, their API keys, idempotency keys and webhooks.

Every request submitted over HTTP belongs to a tenant (``batches.tenant_id``); batches submitted
by the CLI have none and are invisible to API keys. API keys are stored only as a SHA-256 hash
(they are 256-bit random strings, so a plain hash cannot be reversed by guessing).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Tenant(Base):
    """Who owns requests: every API key belongs to one tenant."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    webhook_secret: Mapped[str] = mapped_column(Text)  # whsec_<base64>: signs its webhooks
    spend_cap_micros: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """One API key (its hash only), with its per-minute submit counter."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, for lists
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    submits_per_minute: Mapped[int | None] = mapped_column(Integer)  # None: the setting
    rate_window: Mapped[int] = mapped_column(BigInteger, default=0)  # minute of rate_count
    rate_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_api_keys_tenant", "tenant_id"),)


class IdempotencyKey(Base):
    """The first answer to a POST with an ``Idempotency-Key``, replayed to its duplicates.

    ``state`` is ``processing`` while the first request runs (a duplicate then gets 409) and
    ``done`` once ``status_code`` and ``body`` hold its answer.
    """

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # method, path, query and body
    state: Mapped[str] = mapped_column(String(20))
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)


class WebhookEndpoint(Base):
    """A URL a tenant receives webhooks at; disabled when it answers 410 Gone."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("tenant_id", "url"),)


class RequestWebhook(Base):
    """A request's webhook: where its events go and which of them."""

    __tablename__ = "request_webhooks"

    batch_id: Mapped[str] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)


class WebhookDelivery(Base):
    """One event for one endpoint, written in the transaction of the change that caused it.

    Its id is the ``webhook-id`` header, the same on every attempt. ``state``: ``pending`` (due at
    ``next_attempt_at``; also while an attempt is under way, with ``next_attempt_at`` pushed past
    it as a lease), ``delivered``, ``failed`` (the retry schedule ran out) or ``disabled`` (the
    endpoint answered 410).
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[str] = mapped_column(String(32))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[str] = mapped_column(Text)  # the exact body that is signed and sent
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_batch", "batch_id"),
    )


class WebhookAttempt(Base):
    """One try at sending a delivery: the answer's status code, or why there was none."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id"),)
