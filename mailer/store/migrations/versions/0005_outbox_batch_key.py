"""Outbox rows remember the claim they were sent in, so a resumed send can resend the
identical batch (same idempotency key) or look it up at the provider.

Revision ID: 0005_outbox_batch_key
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_outbox_batch_key"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("batch_key")
