"""outbox.claimed_at: when the claim a row was last sent in was made

Revision ID: 0015
Revises: 0001
Create Date: 2026-12-04

A take-over decides whether an idempotent provider (Brevo) still remembers a crashed
claim's idempotency key by the key's age. It used to read that age off the lease, but a
take-over gives the rows a new lease and renewals move it on, so after a taker crashed
too the key looked younger than it was, and a batch could be resent under a key the
provider had forgotten. The claim now records when it was made, and take-overs and
renewals keep it. Rows claimed before keep NULL: judged by their lease, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('claimed_at')
