"""Subscribers, their consent events and suppressions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, bindparam, insert, select, update

from mailer.models import SECTIONS, Preferences, Subscriber, SubscriberStatus
from mailer.store.tables import UTCDateTime, consent_events, subscribers, suppressions


@dataclass(frozen=True)
class ConsentContext:
    """Where a ledger event came from: source, consent text shown, and (per policy) IP/UA."""

    source: str
    consent_text_version: str | None = None
    ip: str | None = None
    user_agent: str | None = None


class InvalidAddress(ValueError):
    """An e-mail address that is not valid syntax; the message says why, in Dutch."""


def normalize_email(address: str) -> str:
    """Validated, normalised address: IDNA/lower-cased domain, local part kept as typed."""
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    local, _, domain = result.normalized.rpartition("@")
    return f"{local}@{(result.ascii_domain or domain).lower()}"


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


def is_suppressed(conn: Connection, address: str) -> bool:
    """Whether an address must never be mailed again (erased, bounced, complained)."""
    return conn.execute(
        select(suppressions.c.email_hash).where(suppressions.c.email_hash == email_hash(address))
    ).first() is not None


def find_by_email(conn: Connection, address: str) -> Subscriber | None:
    """A subscriber by (normalised) address."""
    row = conn.execute(select(subscribers).where(subscribers.c.email == address)).first()
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


# Statements built once: the one-click path runs them thousands of times a second, and
# building a statement costs more than executing a cached one.
_INSERT_EVENT = insert(consent_events)
_LINK_ROW = select(subscribers.c.id, subscribers.c.email, subscribers.c.status,
                   subscribers.c.token_version).where(subscribers.c.id == bindparam("sid"))
_RECEIVING = [SubscriberStatus.PENDING.value, SubscriberStatus.ACTIVE.value]
_UNSUBSCRIBE = (
    update(subscribers)
    .where(subscribers.c.id == bindparam("sid"), subscribers.c.token_version == bindparam("v"),
           subscribers.c.status.in_(_RECEIVING))
    .values(status=SubscriberStatus.UNSUBSCRIBED.value,
            updated_at=bindparam("now", type_=UTCDateTime()),
            unsubscribed_at=bindparam("now", type_=UTCDateTime()))
    .returning(subscribers.c.id, subscribers.c.email)
)


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


def link_row(conn: Connection, subscriber_id: int):
    """What a link needs to know of a subscriber: id, email, status, token_version."""
    return conn.execute(_LINK_ROW, {"sid": subscriber_id}).first()


def unsubscribe_receiving(conn: Connection, subscriber_id: int, token_version: int,
                          now: datetime, context: ConsentContext) -> bool:
    """Unsubscribe a pending or active subscriber whose links are at this version, and log
    it, in one UPDATE ... RETURNING; False if no such subscriber (the caller asks why)."""
    row = conn.execute(_UNSUBSCRIBE, {"sid": subscriber_id, "v": token_version, "now": now}
                       ).first()
    if row is not None:
        log_event(conn, row, "unsubscribe", now, context)
    return row is not None


def set_status(
    conn: Connection, subscriber_id: int, status: SubscriberStatus, now: datetime, source: str,
    details: dict | None = None, *, event: str | None = None,
    context: ConsentContext | None = None,
) -> bool:
    """Move a subscriber to a status and log it; False when it already had that status."""
    row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
    if row is None or row.status == status.value:
        return False
    values: dict = {"status": status.value, "updated_at": now}
    if status is SubscriberStatus.UNSUBSCRIBED:
        values["unsubscribed_at"] = now
    if status is SubscriberStatus.ACTIVE:
        values["confirmed_at"] = now
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(**values))
    ctx = context or ConsentContext(source)
    record_consent(conn, subscriber_id, row.email, event or status.value, now, ctx.source,
                   ctx.consent_text_version, ctx.ip, ctx.user_agent,
                   {"from": row.status, **(details or {})})
    if status in (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED):
        suppress(conn, row.email, status.value, now)
    return True


def subscriber_row(conn: Connection, subscriber_id: int):
    """The raw `subscribers` row of an id, or None."""
    return conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()


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
    values = {**stored_preferences(preferences), "name": clean_name(name)}
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if not changed:
        return False
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                 .values(**changed, updated_at=now))
    details = {k: v for k, v in changed.items() if k in ("sections", "themes")}
    if "name" in changed:
        details["name_changed"] = True  # the ledger proves consent; it need not keep names
    log_event(conn, row, "preferences", now, context, details)
    return True


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


def active_subscribers(conn: Connection) -> Iterable[Subscriber]:
    """Every active subscriber, by id."""
    query = select(subscribers).where(subscribers.c.status == SubscriberStatus.ACTIVE.value)
    return [subscriber_from(r) for r in conn.execute(query.order_by(subscribers.c.id))]
