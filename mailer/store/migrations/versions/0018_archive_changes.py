"""archive_changes: editors take a sent issue off the public archive and put it back

Revision ID: 0018
Revises: 0001
Create Date: 2026-12-05

An item withdrawn after the send (a retracted article, a cancelled event) stayed on the
archive page for good. `mailer issues unpublish|republish` record each change here,
append-only, with who made it and when; the archive leaves out an issue whose latest
change took it off. (0017 is taken by job_state.failures on another branch.)
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'archive_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('issue_id', sa.Integer(), nullable=False),
        sa.Column('unpublished', sa.Boolean(), nullable=False),
        sa.Column('changed_by', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['issue_id'], ['issues.id'],
                                name=op.f('fk_archive_changes_issue_id'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_archive_changes')),
    )
    op.create_index('ix_archive_changes_issue_id', 'archive_changes', ['issue_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_archive_changes_issue_id', table_name='archive_changes')
    op.drop_table('archive_changes')
