"""job_state_failures: what the editors were told is failing in a job

Revision ID: 0017
Revises: 0006
Create Date: 2026-12-06

The scheduler mailed the editors only when a job went from working to failing, so a
second source breaking while the first was still broken went unmentioned, and nobody
heard when the job worked again. It now remembers what it told the editors (failure keys
such as the broken sources' names) and mails when something new fails or all is well.
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
# After 0006, not 0001 like the others: it alters job_state, which 0006 creates, and
# branches of 0001 are upgraded in no guaranteed order. (depends_on would do the same
# but hides 0006 from the recorded heads, which `mailer init`'s up-to-date check reads.)
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job_state') as batch:
        batch.add_column(sa.Column('failures', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job_state') as batch:
        batch.drop_column('failures')
