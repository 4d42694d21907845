"""The record: batches, their items, every attempt, and the fleet's dispatch window.

Money is kept in integer micro-dollars (``*_micros``) so sums are exact on every backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow
from models.statuses import BatchStatus, ItemStatus


class Batch(Base):
    """One submitted manifest."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=BatchStatus.running.value)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    budget_micros: Mapped[int | None] = mapped_column(BigInteger)
    reserved_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(Text)
    auth_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_dispatch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tenant_id: Mapped[str | None] = mapped_column(String(32))  # HTTP API owner; None from the CLI

    __table_args__ = (
        Index("ix_batches_status_priority", "status", "priority"),
        Index("ix_batches_tenant_created", "tenant_id", "created_at"),
    )


class Item(Base):
    """One image of one row: a rendered prompt, its references and where its image goes."""

    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(Text)
    variant: Mapped[int] = mapped_column(Integer, default=1)
    row_label: Mapped[str] = mapped_column(String(200), default="")
    prompt: Mapped[str] = mapped_column(Text)
    refs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    aspect_ratio: Mapped[str | None] = mapped_column(String(10))
    image_size: Mapped[str | None] = mapped_column(String(10))
    fingerprint: Mapped[str] = mapped_column(String(64))
    output_key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ItemStatus.queued.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    no_image_count: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    current_attempt_id: Mapped[str | None] = mapped_column(String(32))
    estimate_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    error_kind: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    reused_from: Mapped[str | None] = mapped_column(String(32))
    content_type: Mapped[str | None] = mapped_column(String(40))
    review: Mapped[str | None] = mapped_column(String(20))
    review_note: Mapped[str | None] = mapped_column(Text)
    force: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # no reuse
    # automatic checks (worker/checks): settings from the manifest, then the outcome
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    qa: Mapped[str | None] = mapped_column(String(20))  # pending | passed | failed
    qa_note: Mapped[str | None] = mapped_column(Text)
    qa_hash: Mapped[str | None] = mapped_column(String(16))  # 64-bit difference hash, hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_items_batch_seq", "batch_id", "seq"),
        Index("ix_items_fingerprint_status", "fingerprint", "status"),
        Index("ix_items_batch_status", "batch_id", "status"),
        Index("ix_items_status_not_before", "status", "not_before"),
        Index("ix_items_qa", "qa", "status"),
        Index(
            "ix_items_succeeded_fingerprint",
            "fingerprint",
            postgresql_where=text("status = 'succeeded'"),
            sqlite_where=text("status = 'succeeded'"),
        ),
    )


class Attempt(Base):
    """One call to the provider for an item: committed as `calling` before it is paid for."""

    __tablename__ = "attempts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(String(32))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    worker: Mapped[str | None] = mapped_column(String(200))
    reserved_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    http_code: Mapped[int | None] = mapped_column(Integer)
    error_status: Mapped[str | None] = mapped_column(String(60))
    finish_reason: Mapped[str | None] = mapped_column(String(60))
    message: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(100))
    response_id: Mapped[str | None] = mapped_column(String(200))
    traffic_type: Mapped[str | None] = mapped_column(String(40))
    storage_key: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_attempts_item", "item_id"),
        Index("ix_attempts_finished_at", "finished_at"),
        Index("ix_attempts_state", "state"),
        Index("ix_attempts_batch_started", "batch_id", "started_at"),
    )


class OutputKey(Base):
    """Who owns a storage key: one item at a time, so no batch overwrites another's image.

    Claimed at submit in the batch's transaction (the primary key makes two concurrent submits
    of the same key collide); handed to a new item only when the owner ended without an image.
    """

    __tablename__ = "output_keys"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[str] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_output_keys_item", "item_id"),)


class FleetWindow(Base):
    """The one adaptive concurrency window shared by every scheduler and worker (one row)."""

    __tablename__ = "fleet_window"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    limit: Mapped[float] = mapped_column(Float)
    w_max: Mapped[float] = mapped_column(Float, default=0.0)
    last_decrease_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    observed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Heartbeat(Base):
    """A running worker or scheduler process; `beat_at` (the database's clock) is refreshed every
    few seconds, and the row is removed when the process stops cleanly (`stencil doctor`)."""

    __tablename__ = "heartbeats"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The HTTP API's tables share this metadata (migrations and the drift test see them).
from models import api_tables  # noqa: E402, F401
