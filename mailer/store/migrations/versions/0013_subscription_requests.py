"""subscription_requests: what a subscribe request for a known address asks, kept apart

Revision ID: 0013
Revises: 0001
Create Date: 2026-12-03

The subscribe form used to write a request for a pending or unsubscribed address straight
into its record, so anyone who knew an address could change that person's stored name and
preferences before any confirmation. A request now waits in this table until the confirm
link sent for it is used. The confirm link binds the request's id, so an id must never be
handed out twice: AUTOINCREMENT on SQLite (a plain rowid reuses a deleted maximum).
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'subscription_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('sections', sa.JSON(), nullable=False),
        sa.Column('themes', sa.JSON(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'],
                                name=op.f('fk_subscription_requests_subscriber_id')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_requests')),
        sa.UniqueConstraint('subscriber_id', name='uq_subscription_requests_subscriber_id'),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table('subscription_requests')
