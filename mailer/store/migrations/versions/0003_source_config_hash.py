"""source_state remembers a fingerprint of the source's configuration, so a changed
sources.toml (topic mapping, options) or parser makes the next sync re-read the source
instead of trusting a 304 for content that was imported under the old settings.

Revision ID: 0003_source_config_hash
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_source_config_hash"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("source_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_state", schema=None) as batch_op:
        batch_op.drop_column("config_hash")
