"""outbox work indexes: partial indexes for claiming and taking over at scale

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-28

Workers claim with `status = 'queued' AND issue_id = ? ORDER BY id LIMIT n FOR UPDATE SKIP
LOCKED` and look for expired leases among `status = 'sending'` rows. Partial indexes on
just those rows stay as small as the work still to do, however many rows were sent, so
each claim reads a few index pages instead of walking past the sent part of the issue.
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0001'
branch_labels = None
depends_on = None

QUEUED = sa.text("status = 'queued'")
SENDING = sa.text("status = 'sending'")


def upgrade() -> None:
    op.create_index('ix_outbox_queued_issue_id', 'outbox', ['issue_id', 'id'],
                    postgresql_where=QUEUED, sqlite_where=QUEUED)
    op.create_index('ix_outbox_sending_issue_lease', 'outbox', ['issue_id', 'lease_until'],
                    postgresql_where=SENDING, sqlite_where=SENDING)


def downgrade() -> None:
    op.drop_index('ix_outbox_sending_issue_lease', table_name='outbox')
    op.drop_index('ix_outbox_queued_issue_id', table_name='outbox')
