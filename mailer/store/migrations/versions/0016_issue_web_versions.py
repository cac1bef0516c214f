"""issue_web_versions: the public web version of an issue as it was sent

Revision ID: 0016
Revises: 0001
Create Date: 2026-12-05

The archive rendered an issue's web version from the items as they are now, so an item
edited after the send changed what the archive showed as sent. The web version (every
section, no personal value) is now rendered once when sending begins and kept. Issues
sent before have none: the archive renders those from their stored items, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('issue_web_versions',
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'],
                            name=op.f('fk_issue_web_versions_issue_id'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('issue_id', name=op.f('pk_issue_web_versions'))
    )


def downgrade() -> None:
    op.drop_table('issue_web_versions')
