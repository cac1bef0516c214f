"""Subscribers, their consent events and suppressions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, Dialect, Engine, delete, func, insert, select, update

from mailer.models import SECTIONS, Preferences, Subscriber, SubscriberStatus
from mailer.store.db import driver_sql, driver_transaction
from mailer.store.subscription_requests import drop_request
from mailer.store.tables import consent_events, subscribers, suppressions


@dataclass(frozen=True)
class ConsentContext:
    """Where a ledger event came from: source, consent text shown, and (per policy) IP/UA."""

    source: str
    consent_text_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None


def email_hash(address: str) -> str:
    """The stable hash of a normalised address, kept for suppression after erasure."""
    return hashlib.sha256(address.lower().encode()).hexdigest()


def clean_name(name: str) -> str:
    """A display name without control characters (no header injection), at most 200 chars."""
    return " ".join("".join(c if c.isprintable() else " " for c in name).split())[:200]


def preferences_of(row) -> Preferences:
    """The Preferences stored on a subscriber row."""
    return Preferences(sections=frozenset(row.sections), themes=frozenset(row.themes))


def subscriber_from(row) -> Subscriber:
    """Turn a `subscribers` row into a Subscriber."""
    return Subscriber(
        id=row.id, email=row.email, name=row.name, status=SubscriberStatus(row.status),
        preferences=preferences_of(row), token_version=row.token_version,
    )


def active_segments(conn: Connection) -> list[tuple[str, int]]:
    """Segment keys of the active subscribers with how many have each, largest first."""
    return [tuple(r) for r in conn.execute(
        select(subscribers.c.segment_key, func.count())
        .where(subscribers.c.status == SubscriberStatus.ACTIVE.value)
        .group_by(subscribers.c.segment_key)
        .order_by(func.count().desc(), subscribers.c.segment_key))]


def is_suppressed(conn: Connection, address: str) -> bool:
    """Whether an address must never be mailed again (erased, bounced, complained, or
    unsubscribed and erased since: see `suppression_reason`)."""
    return suppression_reason(conn, address) is not None


# The suppression of someone who unsubscribed and whose record retention erased: nobody
# else adds the address back (import, `subscribers add`), but the person may subscribe
# again by double opt-in, and confirming lifts it. Retention suppresses with the status
# someone left with as the reason, so this is that status.
LEFT_BY_CHOICE = SubscriberStatus.UNSUBSCRIBED.value


def suppression_reason(conn: Connection, address: str) -> str | None:
    """Why an address is suppressed, or None if it is not."""
    return conn.execute(select(suppressions.c.reason).where(
        suppressions.c.email_hash == email_hash(address))).scalar()


def lift_own_suppression(conn: Connection, address: str) -> None:
    """Drop an address's suppression if it only records that its owner unsubscribed: they
    have just confirmed a new subscription themselves."""
    conn.execute(delete(suppressions).where(suppressions.c.email_hash == email_hash(address),
                                            suppressions.c.reason == LEFT_BY_CHOICE))


def same_address(address: str):
    """The condition "this subscriber's address is `address`", whatever the letter case:
    mailboxes ignore it in practice, so Anna@Voorbeeld.nl and anna@voorbeeld.nl are one
    subscriber. Both sides go through the database's lower(), which the unique index
    uq_subscribers_email_lower holds, so the lookup uses it."""
    return func.lower(subscribers.c.email) == func.lower(address)


def find_by_email(conn: Connection, address: str) -> Subscriber | None:
    """A subscriber by (normalised) address, in any letter case."""
    row = conn.execute(select(subscribers).where(same_address(address))).first()
    return subscriber_from(row) if row else None


def add_subscriber(
    conn: Connection, *, email: str, name: str, preferences: Preferences,
    status: SubscriberStatus, source: str, now: datetime, consent_text_version: str | None = None,
    ip: str | None = None, user_agent: str | None = None, note: str | None = None,
) -> Subscriber:
    """Create a subscriber and record how consent was given, in one transaction."""
    values = dict(
        email=email, name=clean_name(name), status=status.value,
        sections=sorted(preferences.sections & set(SECTIONS)), themes=sorted(preferences.themes),
        segment_key=preferences.key(), token_version=1, source=source,
        created_at=now, updated_at=now,
        confirmed_at=now if status is SubscriberStatus.ACTIVE else None,
    )
    sid = conn.execute(insert(subscribers).values(**values)).inserted_primary_key[0]
    event = "subscribe_confirmed" if status is SubscriberStatus.ACTIVE else "subscribe"
    record_consent(conn, sid, email, event, now, source, consent_text_version, ip, user_agent,
                   {"note": note} if note else {})
    return find_by_email(conn, email)  # type: ignore[return-value]


# Built once: statements run for every ledger entry, and building one costs more than
# executing a cached one.
_INSERT_EVENT = insert(consent_events)


def record_consent(
    conn: Connection, subscriber_id: int | None, email: str, event: str, now: datetime,
    source: str, consent_text_version: str | None = None, ip: str | None = None,
    user_agent: str | None = None, details: dict | None = None,
) -> None:
    """Append one event to the consent ledger."""
    conn.execute(_INSERT_EVENT, dict(
        subscriber_id=subscriber_id, email_hash=email_hash(email), event=event, occurred_at=now,
        source=source, consent_text_version=consent_text_version, ip=ip, user_agent=user_agent,
        details=details or {},
    ))


def last_event_at(conn: Connection, subscriber_id: int, event: str) -> datetime | None:
    """When a subscriber's ledger last recorded an event of a kind, if ever."""
    return conn.execute(select(func.max(consent_events.c.occurred_at)).where(
        consent_events.c.subscriber_id == subscriber_id,
        consent_events.c.event == event)).scalar()


@dataclass(frozen=True)
class LinkOutcome:
    """What an unsubscribe link did to its subscriber's row: whether this call unsubscribed
    them, and the row's status and token version (to tell a revoked link from a repeat)."""

    unsubscribed: bool
    status: str
    token_version: int


# The one-click unsubscribe in plain SQL (see unsubscribe_by_token for why): the same
# UPDATE and ledger row the general path (set_status, record_consent) would write.
_UNSUBSCRIBE_SQL = """
UPDATE subscribers SET status = :unsubscribed, updated_at = :now, unsubscribed_at = :now
WHERE id = :sid AND token_version = :version AND status IN (:pending, :active)
RETURNING email"""
_LEDGER_SQL = """
INSERT INTO consent_events (subscriber_id, email_hash, event, occurred_at, source,
                            consent_text_version, ip, user_agent, details)
VALUES (:sid, :email_hash, 'unsubscribe', :now, :source, :consent_text_version, :ip,
        :user_agent, :details)"""
_LINK_ROW_SQL = "SELECT status, token_version FROM subscribers WHERE id = :sid"


def unsubscribe_by_token(engine: Engine, subscriber_id: int, token_version: int,
                         now: datetime, context: ConsentContext) -> LinkOutcome | None:
    """Unsubscribe a pending or active subscriber whose links are at this version and log
    it, in one write transaction; None if there is no such subscriber at all.

    RFC 8058 one-click runs this thousands of times a second, so it skips SQLAlchemy's
    per-statement machinery (which cost more than the writes) and runs plain SQL on the
    pooled driver connection; values go through the columns' own bind processors, so the
    rows are exactly what the general path writes (tests compare the two).
    """
    dialect = engine.dialect
    stamp, details = _one_click_binds(dialect)
    at = stamp(now)
    with driver_transaction(engine) as cursor:
        cursor.execute(driver_sql(dialect.name, _UNSUBSCRIBE_SQL), {
            "sid": subscriber_id, "version": token_version, "now": at,
            "unsubscribed": SubscriberStatus.UNSUBSCRIBED.value,
            "pending": SubscriberStatus.PENDING.value, "active": SubscriberStatus.ACTIVE.value})
        updated = cursor.fetchone()
        if updated is not None:
            cursor.execute(driver_sql(dialect.name, _LEDGER_SQL), {
                "sid": subscriber_id, "email_hash": email_hash(updated[0]), "now": at,
                "source": context.source, "consent_text_version": context.consent_text_version,
                "ip": context.ip, "user_agent": context.user_agent, "details": details({})})
            return LinkOutcome(True, SubscriberStatus.UNSUBSCRIBED.value, token_version)
        cursor.execute(driver_sql(dialect.name, _LINK_ROW_SQL), {"sid": subscriber_id})
        row = cursor.fetchone()
    return LinkOutcome(False, row[0], row[1]) if row is not None else None


@lru_cache(maxsize=8)
def _one_click_binds(dialect: Dialect) -> tuple[Callable, Callable]:
    """The bind processors (per dialect) of the timestamp and ledger-details columns."""
    return (_bind_processor(subscribers.c.updated_at, dialect),
            _bind_processor(consent_events.c.details, dialect))


def _bind_processor(column, dialect: Dialect) -> Callable:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process or (lambda value: value)


def set_status(
    conn: Connection, subscriber_id: int, status: SubscriberStatus, now: datetime, source: str,
    details: dict | None = None, *, event: str | None = None,
    context: ConsentContext | None = None, from_provider: bool = False,
) -> bool:
    """Move a subscriber to a status and log it; False when it already had that status,
    or, `from_provider`, when a provider's report may not move them there
    (`provider_may_set`)."""
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    if row is None or row.status == status.value:
        return False
    if from_provider and not provider_may_set(SubscriberStatus(row.status), status):
        return False
    values: dict = {"status": status.value, "updated_at": now}
    if status is SubscriberStatus.UNSUBSCRIBED:
        values["unsubscribed_at"] = now
    if status is SubscriberStatus.ACTIVE:
        values["confirmed_at"] = now
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))
    if status not in (SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED):
        drop_request(conn, subscriber_id)  # nobody can confirm it any more
    ctx = context or ConsentContext(source)
    record_consent(conn, subscriber_id, row.email, event or status.value, now, ctx.source,
                   ctx.consent_text_version, ctx.ip, ctx.user_agent,
                   {"from": row.status, **(details or {})})
    if status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        suppress(conn, row.email, status.value, now)
    return True


# A provider's report (webhook or send answer) only moves a subscriber "down": a complaint
# outranks a bounce, which outranks an unsubscribe; an erased subscriber is never touched.
PROVIDER_RANK = {SubscriberStatus.UNSUBSCRIBED: 1, SubscriberStatus.BOUNCED: 2,
                 SubscriberStatus.COMPLAINED: 3, SubscriberStatus.ERASED: 9}


def provider_may_set(current: SubscriberStatus, status: SubscriberStatus) -> bool:
    """Whether a provider's report may move a subscriber from `current` to `status`."""
    return PROVIDER_RANK.get(current, 0) < PROVIDER_RANK[status]


def subscriber_row(conn: Connection, subscriber_id: int):
    """The raw `subscribers` row of an id, or None."""
    return conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()


def locked_row(conn: Connection, subscriber_id: int):
    """The raw `subscribers` row of an id, locked until the transaction ends (FOR UPDATE
    on PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the whole database), or None."""
    return conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)
                        .with_for_update()).first()


def subscriber_by_id(conn: Connection, subscriber_id: int) -> Subscriber | None:
    """A subscriber by id."""
    row = subscriber_row(conn, subscriber_id)
    return subscriber_from(row) if row else None


def stored_preferences(preferences: Preferences) -> dict:
    """Column values for a preference set: sorted lists and the matching segment key."""
    clean = Preferences(frozenset(preferences.sections) & set(SECTIONS),
                        frozenset(preferences.themes))
    return {"sections": sorted(clean.sections), "themes": sorted(clean.themes),
            "segment_key": clean.key()}


def change_preferences(
    conn: Connection, subscriber_id: int, preferences: Preferences, name: str, now: datetime,
    context: ConsentContext,
) -> bool:
    """Store new sections, themes and name (and the segment key); False if nothing changed."""
    row = subscriber_row(conn, subscriber_id)
    details = apply_choices(conn, row, preferences, name, now)
    if details is None:
        return False
    log_event(conn, row, "preferences", now, context, details)
    return True


def apply_choices(conn: Connection, row, preferences: Preferences, name: str,
                  now: datetime) -> dict | None:
    """Write sections, themes and name to a subscriber row; returns what changed as the
    ledger records it (sections and themes; of the name only that it changed), or None
    when nothing did."""
    values = {**stored_preferences(preferences), "name": clean_name(name)}
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if not changed:
        return None
    conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                 .values(**changed, updated_at=now))
    details = {k: v for k, v in changed.items() if k in ("sections", "themes")}
    if "name" in changed:
        details["name_changed"] = True  # the ledger proves consent; it need not keep names
    return details


def log_event(conn: Connection, row, event: str, now: datetime, context: ConsentContext,
              details: dict | None = None) -> None:
    """Append a ledger event for a subscriber row with its context."""
    record_consent(conn, row.id, row.email, event, now, context.source,
                   context.consent_text_version, context.ip, context.user_agent, details)


def revoke_links(conn: Connection, subscriber_id: int, now: datetime, source: str) -> int:
    """Invalidate every link sent before by bumping the token version; returns the new one."""
    row = subscriber_row(conn, subscriber_id)
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                 .values(token_version=row.token_version + 1, updated_at=now))
    log_event(conn, row, "links_revoked", now, ConsentContext(source))
    return row.token_version + 1


def suppress(conn: Connection, address: str, reason: str, now: datetime) -> None:
    """Add an address's hash to the suppression list (idempotent)."""
    if not is_suppressed(conn, address):
        conn.execute(insert(suppressions).values(
            email_hash=email_hash(address), reason=reason, created_at=now))
