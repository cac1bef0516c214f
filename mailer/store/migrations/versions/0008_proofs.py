"""proofs: test sends of an issue, for `mailer preview --diff`

Revision ID: 0008_proofs
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = '0008_proofs'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('proofs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.String(length=200), nullable=False),
    sa.Column('period', sa.String(length=40), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=True),
    sa.Column('segment_key', sa.String(length=400), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('preheader', sa.Text(), nullable=False),
    sa.Column('item_ids', sa.JSON(), nullable=False),
    sa.Column('html_bytes', sa.Integer(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], name=op.f('fk_proofs_issue_id'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proofs'))
    )
    op.create_index('ix_proofs_list_period', 'proofs', ['list_id', 'period', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_proofs_list_period', table_name='proofs')
    op.drop_table('proofs')
