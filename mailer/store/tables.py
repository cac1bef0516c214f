"""SQLAlchemy Core tables: the one description of the schema, for SQLite and PostgreSQL.

Migrations in `migrations/versions/` create and change these tables; this module is what
the code queries. A change here needs a new migration (tests check they agree).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# The largest id an Integer column holds on PostgreSQL (32 bits): no row of ours has a
# larger one, and binding a larger number makes the database refuse the whole query.
MAX_ID = 2**31 - 1


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(name: str, nullable: bool = True) -> Column:
    return Column(name, UTCDateTime(), nullable=nullable)


items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(100), nullable=False),
    Column("source_id", String(500), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(20), nullable=False, default="active"),
    Column("title", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("canonical_url", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    _utc("published_at"),
    _utc("starts_at"),
    _utc("ends_at"),
    Column("all_day", Boolean, nullable=False, default=False),
    Column("location", Text),
    Column("online", Boolean, nullable=False, default=False),
    Column("event_type", String(40)),
    Column("image_url", Text),
    Column("image_alt", Text),
    Column("topics", JSON, nullable=False, default=list),
    Column("content_hash", String(64), nullable=False),
    _utc("first_seen_at", nullable=False),
    _utc("updated_at", nullable=False),
    _utc("last_seen_at", nullable=False),
    UniqueConstraint("source", "source_id", name="uq_items_source_source_id"),
    Index("ix_items_canonical_url", "canonical_url"),
    Index("ix_items_kind_published", "kind", "published_at"),
    Index("ix_items_kind_starts", "kind", "starts_at"),
)

source_state = Table(
    "source_state",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("config_hash", String(64)),  # the configuration the validators were earned with
    _utc("last_fetched_at"),
    _utc("last_success_at"),
    Column("last_error", Text),
)

issues = Table(
    "issues",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("list_id", String(200), nullable=False),
    Column("period", String(40), nullable=False),
    Column("number", Integer, nullable=False),
    Column("issue_date", Date, nullable=False),
    _utc("moment", nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("intro", Text),
    Column("status", String(20), nullable=False),
    _utc("created_at", nullable=False),
    _utc("send_started_at"),
    _utc("sent_at"),
    Column("status_note", Text),
    # Set once the outbox holds every recipient; workers drain only such issues (0010).
    _utc("enqueued_at"),
    # Sent also to segments with nothing new for them (`--even-without-news`, 0014).
    Column("even_without_news", Boolean, nullable=False, default=False),
    UniqueConstraint("list_id", "period", name="uq_issues_list_period"),
)

issue_items = Table(
    "issue_items",
    metadata,
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id"), primary_key=True),
    Column("section", String(20), nullable=False),
    Column("position", Integer, nullable=False),
    Index("ix_issue_items_item_id", "item_id"),
)

# One rendering per (issue, segment), made once at enqueue time: every recipient of a
# segment gets exactly these bytes, even if templates or content change mid-send.
issue_renders = Table(
    "issue_renders",
    metadata,
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True),
    Column("segment_key", String(400), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("item_count", Integer, nullable=False),
    # Of those, the ones no earlier issue carried; NULL for renderings from before 0014.
    Column("new_count", Integer),
    _utc("created_at", nullable=False),
)

# The public web version of an issue as it was when its sending began (0016): the archive
# shows what was sent, not the items as edited since. Rendered without any personal value.
issue_web_versions = Table(
    "issue_web_versions",
    metadata,
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True),
    Column("html", Text, nullable=False),
    _utc("created_at", nullable=False),
)

# Editors taking a sent issue off the public archive and putting it back (0018), append-only:
# an issue is off while its latest row says so. Who and when stay on record either way.
archive_changes = Table(
    "archive_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="CASCADE"), nullable=False),
    Column("unpublished", Boolean, nullable=False),
    Column("changed_by", String(200), nullable=False),
    Column("reason", Text),
    _utc("changed_at", nullable=False),
    Index("ix_archive_changes_issue_id", "issue_id", "id"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("sections", JSON, nullable=False),
    Column("themes", JSON, nullable=False),
    Column("segment_key", String(400), nullable=False),
    Column("token_version", Integer, nullable=False, default=1),
    Column("source", String(200), nullable=False, default=""),
    _utc("created_at", nullable=False),
    _utc("updated_at", nullable=False),
    _utc("confirmed_at"),
    _utc("unsubscribed_at"),
    UniqueConstraint("email", name="uq_subscribers_email"),
    Index("ix_subscribers_status_id", "status", "id"),
)
# One subscriber per address whatever its letter case (migration 0012); the address itself
# is kept as typed. `store.subscribers.same_address` looks up through this index.
Index("uq_subscribers_email_lower", func.lower(subscribers.c.email), unique=True)

# A subscribe request for an address that already has a record (pending or unsubscribed):
# the requested name and preferences wait here, apart from the record, until the confirm
# link sent for this very request is used (migration 0013). One per subscriber: a newer
# request replaces an older one under a new id. Confirm links bind the id, so ids are
# never handed out twice (AUTOINCREMENT on SQLite; PostgreSQL's sequence never reuses).
subscription_requests = Table(
    "subscription_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("sections", JSON, nullable=False),
    Column("themes", JSON, nullable=False),
    _utc("requested_at", nullable=False),
    UniqueConstraint("subscriber_id", name="uq_subscription_requests_subscriber_id"),
    sqlite_autoincrement=True,
)

# Append-only proof of consent (AVG art. 7(1)): never updated, never deleted, except
# that erasure blanks personal fields (ip, user agent, details) and keeps the hash, and
# retention blanks ip and user agent after `consent_ip_days` (`store.retention`).
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=True),
    Column("email_hash", String(64), nullable=False),
    Column("event", String(30), nullable=False),
    _utc("occurred_at", nullable=False),
    Column("source", Text, nullable=False),
    Column("consent_text_version", String(40)),
    Column("ip", String(64)),
    Column("user_agent", Text),
    Column("details", JSON, nullable=False, default=dict),
    Index("ix_consent_events_subscriber_id", "subscriber_id"),
    Index("ix_consent_events_email_hash", "email_hash"),
)

# Addresses we must never mail again, kept only as a keyed hash after erasure.
suppressions = Table(
    "suppressions",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("reason", String(30), nullable=False),
    _utc("created_at", nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", Integer, ForeignKey("issues.id"), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("segment_key", String(400), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("message_id", String(300), nullable=False),
    Column("provider_message_id", Text),
    Column("last_error", Text),
    Column("claimed_by", String(100)),
    _utc("lease_until"),
    _utc("next_attempt_at"),
    Column("possible_duplicate", Boolean, nullable=False, default=False),
    _utc("created_at", nullable=False),
    _utc("updated_at", nullable=False),
    _utc("sent_at"),
    Column("batch_key", String(64)),  # the claim a row was last sent in (migration 0005)
    _utc("claimed_at"),  # when that claim was made; take-overs keep it (migration 0015)
    UniqueConstraint("issue_id", "subscriber_id", name="uq_outbox_issue_subscriber"),
    # One index for claims (status = 'queued' ORDER BY id), rows in flight (status =
    # 'sending') and status counts. Partial indexes for queued rows (migration 0009) and
    # rows in flight (0011) cost index writes per recipient and answered nothing faster.
    Index("ix_outbox_issue_status_id", "issue_id", "status", "id"),
)

# Webhook events already applied, so a provider's retry or a replay changes nothing twice.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("provider", String(40), primary_key=True),
    Column("event_id", String(300), primary_key=True),
    _utc("received_at", nullable=False),
)

# Subscription mails and form posts per address hash or IP hash, counted over a sliding
# window; in the database so the limit holds across all web workers.
rate_limit_hits = Table(
    "rate_limit_hits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(100), nullable=False),
    _utc("occurred_at", nullable=False),
    Index("ix_rate_limit_hits_key_occurred", "key", "occurred_at"),
)

# Proofs: test sends of an upcoming issue to editors, so `mailer preview --diff` can say
# what changed since the last one. Only what the diff needs is kept, never addresses.
proofs = Table(
    "proofs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("list_id", String(200), nullable=False),
    Column("period", String(40), nullable=False),
    Column("issue_id", Integer, ForeignKey("issues.id", ondelete="SET NULL")),
    Column("segment_key", String(400), nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("item_ids", JSON, nullable=False),
    Column("html_bytes", Integer, nullable=False),
    Column("recipients", Integer, nullable=False),
    _utc("created_at", nullable=False),
    Index("ix_proofs_list_period", "list_id", "period", "created_at"),
)

# One row per (job, period): the claim that makes a scheduled run happen once, however
# many schedulers or manual runs reach for it. `owner` and `lease_until` tell a live run
# from one a crash left behind.
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", String(100), nullable=False),
    Column("period_key", String(100), nullable=False),
    Column("task", String(40), nullable=False),
    _utc("fire_time", nullable=False),
    Column("status", String(20), nullable=False),
    Column("manual", Boolean, nullable=False, default=False),
    Column("owner", String(200), nullable=False),
    _utc("lease_until", nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Column("issue_id", Integer),
    Column("detail", Text),
    _utc("started_at", nullable=False),
    _utc("finished_at"),
    UniqueConstraint("job_id", "period_key", name="uq_job_runs_job_id_period_key"),
)

# Per job: every fire time up to `covered_until` has been dealt with. Start-up compares
# it with the trigger to find runs missed while no scheduler was running.
job_state = Table(
    "job_state",
    metadata,
    Column("job_id", String(100), primary_key=True),
    _utc("covered_until", nullable=False),
    Column("last_status", String(20)),
    _utc("updated_at", nullable=False),
    # What the editors were told is failing since the job last worked (failure_keys: source
    # names, or "job" for a job that failed as a whole); None while it works. Something not
    # in it is news.
    Column("failures", JSON),
)

# One row per scheduler process: proof of life for operators and `mailer jobs list`.
scheduler_heartbeats = Table(
    "scheduler_heartbeats",
    metadata,
    Column("instance", String(200), primary_key=True),
    _utc("started_at", nullable=False),
    _utc("beat_at", nullable=False),
    _utc("stopped_at"),
    Column("jobs", Integer, nullable=False, default=0),
)
