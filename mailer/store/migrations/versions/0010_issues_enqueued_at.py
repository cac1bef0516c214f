"""issues.enqueued_at: when the issue's outbox was completely filled

Revision ID: 0010
Revises: 0001
Create Date: 2026-11-28

Enqueue fills the outbox in subscriber ranges, each its own transaction (over several
connections on PostgreSQL), so an issue can be `sending` while its outbox is still half
filled. Workers drain only issues with `enqueued_at` set; otherwise one could send the
rows already there, find nothing open, and mark the issue sent before the rest arrive.
Issues already sending, paused or sent were filled in one transaction: they count as
enqueued since their send began.
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE issues SET enqueued_at = COALESCE(send_started_at, created_at) "
               "WHERE status IN ('sending', 'paused', 'sent')")


def downgrade() -> None:
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_column('enqueued_at')
