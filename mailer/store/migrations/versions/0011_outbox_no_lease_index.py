"""outbox: drop the partial index on rows in flight; ix_outbox_issue_status_id finds them

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-28

Every recipient passes through `sending` once: the claim put each row into the partial
index on (issue_id, lease_until) WHERE status = 'sending', and recording its outcome took
it out again, two B-tree writes per recipient on the hottest path. Every query for rows
in flight (take-overs, reconciliation, the next lease to expire) names the issue and
status `sending`, which is an equality prefix of the composite index (issue_id, status,
id); the rows in flight are at most a few batches per worker, so reading their
`lease_until` from the table is as cheap as reading it from an index.
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None

SENDING = sa.text("status = 'sending'")


def upgrade() -> None:
    op.drop_index('ix_outbox_sending_issue_lease', table_name='outbox')


def downgrade() -> None:
    op.create_index('ix_outbox_sending_issue_lease', 'outbox', ['issue_id', 'lease_until'],
                    postgresql_where=SENDING, sqlite_where=SENDING)
