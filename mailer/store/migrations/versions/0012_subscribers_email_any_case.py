"""subscribers: one subscriber per address whatever its letter case

Revision ID: 0012
Revises: 0001
Create Date: 2026-11-29

Addresses were unique as typed, so "Anna@Voorbeeld.nl" and "anna@voorbeeld.nl" could be
two subscribers, and that person got every issue twice. Mailboxes ignore case in practice
(the big providers all do), and suppression already hashed the lower-cased address. A
unique index on lower(email) now makes them one; the address is still kept as typed.

The exact-case constraint stays: it is implied by the new index, and dropping it on SQLite
would mean rebuilding the table that the outbox and the consent ledger point at.

Existing duplicates are settled first: per address the active subscriber (else the
oldest) keeps it; every other row is unsubscribed, gets an undeliverable placeholder
address and new link version, and the consent ledger says which row it merged into.
"""

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0001'
branch_labels = None
depends_on = None

_DUPLICATES = sa.text(
    "SELECT id, email, status, lower(email) FROM subscribers WHERE lower(email) IN "
    "(SELECT lower(email) FROM subscribers GROUP BY lower(email) HAVING count(*) > 1) "
    "ORDER BY lower(email), CASE status WHEN 'active' THEN 0 ELSE 1 END, id")


def upgrade() -> None:
    _settle_duplicates(op.get_bind())
    op.create_index('uq_subscribers_email_lower', 'subscribers', [sa.text('lower(email)')],
                    unique=True)


def downgrade() -> None:
    op.drop_index('uq_subscribers_email_lower', table_name='subscribers')


def _settle_duplicates(conn) -> None:
    """Keep the first row per lower-cased address; merge the others into it."""
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":  # the store keeps naive UTC there (UTCDateTime)
        now = now.replace(tzinfo=None)
    kept: dict[str, int] = {}
    for row_id, email, status, key in conn.execute(_DUPLICATES).all():
        into = kept.setdefault(key, row_id)  # the database's lower(), as the index has it
        if into != row_id:
            _merge(conn, row_id, email, status, into, now)


_subscribers = sa.table(
    'subscribers', sa.column('id', sa.Integer), sa.column('email', sa.String),
    sa.column('status', sa.String), sa.column('token_version', sa.Integer),
    sa.column('unsubscribed_at', sa.DateTime(timezone=True)),
    sa.column('updated_at', sa.DateTime(timezone=True)))
_consent_events = sa.table(
    'consent_events', sa.column('subscriber_id', sa.Integer),
    sa.column('email_hash', sa.String), sa.column('event', sa.String),
    sa.column('occurred_at', sa.DateTime(timezone=True)), sa.column('source', sa.Text),
    sa.column('details', sa.JSON))


def _merge(conn, row_id: int, email: str, status: str, into: int, now: datetime) -> None:
    s = _subscribers.c
    conn.execute(_subscribers.update().where(s.id == row_id).values(
        email=f"merged-{row_id}@merged.invalid", status='unsubscribed',
        unsubscribed_at=sa.func.coalesce(s.unsubscribed_at, now),
        token_version=s.token_version + 1, updated_at=now))
    conn.execute(_consent_events.insert().values(
        subscriber_id=row_id, email_hash=hashlib.sha256(email.lower().encode()).hexdigest(),
        event='merged', occurred_at=now, source='migration:0012',
        details={"into": into, "from": status}))
