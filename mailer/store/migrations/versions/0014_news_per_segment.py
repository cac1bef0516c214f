"""issue_renders.new_count, issues.even_without_news: no issue for a segment with no news

Revision ID: 0014
Revises: 0001
Create Date: 2026-11-30

A send skips the segments that get nothing new (everything in them was in an earlier
issue). The rendering records how many of a segment's items are new, so a resumed send
decides as the first run did; the issue records that its editor chose to send it even
without news, so a resume (or the retry job) does not skip those segments after all.
Renderings from before keep NULL: unknown, never skipped for it.
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('issue_renders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('new_count', sa.Integer(), nullable=True))
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('even_without_news', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_column('even_without_news')
    with op.batch_alter_table('issue_renders', schema=None) as batch_op:
        batch_op.drop_column('new_count')
