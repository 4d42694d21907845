"""safety: output key owners, forced items, fingerprint lookups

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 20:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "output_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("claimed_at", models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_output_keys_item", "output_keys", ["item_id"], unique=False)
    with op.batch_alter_table("items") as batch:
        batch.add_column(
            sa.Column("force", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_items_fingerprint_status", "items", ["fingerprint", "status"], unique=False)
    # every image already stored belongs to the item that made it
    op.execute(
        "INSERT INTO output_keys (key, item_id, batch_id, claimed_at) "
        "SELECT output_key, MIN(id), MIN(batch_id), MIN(updated_at) FROM items "
        "WHERE status = 'succeeded' AND reused_from IS NULL GROUP BY output_key"
    )


def downgrade() -> None:
    op.drop_index("ix_items_fingerprint_status", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("force")
    op.drop_index("ix_output_keys_item", table_name="output_keys")
    op.drop_table("output_keys")
