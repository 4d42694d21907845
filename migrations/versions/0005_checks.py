"""checks: per-item check settings, check state and note, perceptual hash

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("checks", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("qa", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("qa_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("qa_hash", sa.String(length=16), nullable=True))
    op.create_index("ix_items_qa", "items", ["qa", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_items_qa", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("qa_hash")
        batch.drop_column("qa_note")
        batch.drop_column("qa")
        batch.drop_column("checks")
