"""api: tenants, API keys (hash only), idempotency keys, webhooks; batches.tenant_id

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _utc(name: str, nullable: bool) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, models.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("webhook_secret", sa.Text(), nullable=False),
        sa.Column("spend_cap_micros", sa.BigInteger(), nullable=True),
        _utc("created_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("submits_per_minute", sa.Integer(), nullable=True),
        sa.Column("rate_window", sa.BigInteger(), nullable=False),
        sa.Column("rate_count", sa.Integer(), nullable=False),
        _utc("created_at", False),
        _utc("revoked_at", True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )  # fmt: skip
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant_id"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        _utc("created_at", False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], unique=False
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        _utc("disabled_at", True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        _utc("created_at", False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"],
            name=op.f("fk_webhook_endpoints_tenant_id_tenants"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("tenant_id", "url", name=op.f("uq_webhook_endpoints_tenant_id")),
    )  # fmt: skip
    op.create_table(
        "request_webhooks",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"],
            name=op.f("fk_request_webhooks_batch_id_batches"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoints.id"],
            name=op.f("fk_request_webhooks_endpoint_id_webhook_endpoints"),
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_request_webhooks")),
    )  # fmt: skip
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _utc("next_attempt_at", True),
        _utc("created_at", False),
        _utc("delivered_at", True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )  # fmt: skip
    op.create_index("ix_webhook_deliveries_batch", "webhook_deliveries", ["batch_id"], unique=False)
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"],
        unique=False,
    )  # fmt: skip
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        _utc("started_at", False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )  # fmt: skip
    op.create_index(
        "ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id"], unique=False
    )
    op.create_index(
        "ix_attempts_batch_started", "attempts", ["batch_id", "started_at"], unique=False
    )
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("tenant_id", sa.String(length=32), nullable=True))
    op.create_index(
        "ix_batches_tenant_created", "batches", ["tenant_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_batches_tenant_created", table_name="batches")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("tenant_id")
    op.drop_index("ix_attempts_batch_started", table_name="attempts")
    op.drop_index("ix_webhook_attempts_delivery", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_batch", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("request_webhooks")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_api_keys_tenant", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
