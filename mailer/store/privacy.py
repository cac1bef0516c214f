"""Data-subject rights in the store: access (everything held about a person) and erasure."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, String, cast, literal, or_, select, update

from mailer.models import SubscriberStatus
from mailer.store.issues import issue_by_id
from mailer.store.subscribers import (
    ConsentContext,
    email_hash,
    log_event,
    same_address,
    subscriber_row,
    suppress,
)
from mailer.store.subscription_requests import (
    drop_request,
    pending_request,
    subscribers_requesting_since,
)
from mailer.store.tables import consent_events, outbox, subscribers, suppressions

ERASED_PREFIX, ERASED_DOMAIN = "erased-", "@erased.invalid"


def erased_address(subscriber_id: int) -> str:
    """The placeholder that replaces an erased subscriber's address (unique, undeliverable)."""
    return f"{ERASED_PREFIX}{subscriber_id}{ERASED_DOMAIN}"


def erased_address_sql(subscriber_id):
    """`erased_address` as an SQL expression over a subscriber id column (set-based erasure)."""
    return literal(ERASED_PREFIX) + cast(subscriber_id, String) + literal(ERASED_DOMAIN)


def erased_record(placeholder, now: datetime) -> dict:
    """The `subscribers` values of an erased record: placeholder address, no name or
    choices, and a new token version, which revokes every link sent before."""
    return dict(email=placeholder, name="", status=SubscriberStatus.ERASED.value, sections=[],
                themes=[], segment_key="", source="",
                token_version=subscribers.c.token_version + 1, updated_at=now)


def ledger_of(subscriber_ids) -> ColumnElement[bool]:
    """The ledger entries of subscribers (ids, or a select of them): what erasure blanks."""
    return consent_events.c.subscriber_id.in_(subscriber_ids)


def blank_ledger(conn: Connection, subscriber_ids: list[int]) -> None:
    """Drop IPs, user agents and details (provider texts may name the address) from the
    ledger entries of erased subscribers; the entries themselves are the proof and stay."""
    conn.execute(update(consent_events).where(ledger_of(subscriber_ids))
                 .values(ip=None, user_agent=None, details={}))


def erase(conn: Connection, subscriber_id: int, now: datetime, source: str, *,
          suppress_address: bool = True, event: str = "erase") -> None:
    """Erase a subscriber's personal data; keep a hashed suppression entry if asked.

    The row and its ledger stay (the ledger is append-only and other tables point at the
    row) but the address, name, IP addresses and user agents are blanked, a waiting
    subscribe request is deleted, and every link ever sent stops working because the
    token version moves on.
    """
    row = subscriber_row(conn, subscriber_id)
    if row is None or row.status == SubscriberStatus.ERASED.value:
        return
    placeholder = erased_address(subscriber_id)
    if suppress_address:
        suppress(conn, row.email, "erased", now)
    blank_ledger(conn, [subscriber_id])
    erase_from_delivery_records(conn, subscriber_id, row.email)
    drop_request(conn, subscriber_id)
    conn.execute(update(outbox).where(outbox.c.subscriber_id == subscriber_id)
                 .values(email=placeholder))
    conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                 .values(**erased_record(placeholder, now)))
    log_event(conn, row, event, now, ConsentContext(source), {"from": row.status})


def erase_from_delivery_records(conn: Connection, subscriber_id: int, address: str) -> None:
    """Replace the address in what providers told about the subscriber's messages: their
    refusals name it (Postmark's 406, an SMTP 550; `mailer issues show` lists those), and
    the file provider's message id is the path of the .eml, which names it too.

    The rows are locked first (FOR UPDATE, on PostgreSQL), whatever their columns hold
    now: a batch in flight may be recording its answer at this moment. Either it has
    committed, and the locked rows show what it wrote, or it waits for the erasure and
    finds the subscriber erased (see `outbox.record_outcomes`)."""
    placeholder = erased_address(subscriber_id)
    rows = conn.execute(select(outbox.c.id, outbox.c.email, outbox.c.last_error,
                               outbox.c.provider_message_id).where(
        outbox.c.subscriber_id == subscriber_id).with_for_update()).all()
    for r in rows:
        # A row retention thinned out holds no address (""): an empty alternative would
        # match everywhere and garble the skip reason kept there.
        spelled = "|".join(_spelled(a) for a in {address, r.email} if a)
        pattern = re.compile(spelled, re.IGNORECASE)
        cleaned = {column: pattern.sub(placeholder, value)
                   for column, value in (("last_error", r.last_error),
                                         ("provider_message_id", r.provider_message_id))
                   if value and pattern.search(value)}
        if cleaned:
            conn.execute(update(outbox).where(outbox.c.id == r.id).values(**cleaned))


def _spelled(address: str) -> str:
    """A pattern for an address as written, or as a file name gives it (characters other
    than letters, digits and . @ _ - replaced by "_", as `providers.file.safe_name`)."""
    return "".join(re.escape(c) if re.fullmatch(r"[A-Za-z0-9.@_-]", c)
                   else f"(?:{re.escape(c)}|_)" for c in address)


def rows_ledgered_for(conn: Connection, address: str) -> list[int]:
    """Every subscriber row whose consent ledger names an address (by its hash), also rows
    that no longer carry it: migration 0012 moved duplicates of another letter case to a
    placeholder address, keeping their name, ledger and outbox rows."""
    return list(conn.execute(
        select(consent_events.c.subscriber_id).distinct().where(
            consent_events.c.email_hash == email_hash(address),
            consent_events.c.subscriber_id.is_not(None))
        .order_by(consent_events.c.subscriber_id)
    ).scalars())


def stale_pending_ids(conn: Connection, before: datetime) -> list[int]:
    """Pending subscribers not touched since a moment (never confirmed in time), nor asked
    for again since (a request waiting apart has a link that still works)."""
    return list(conn.execute(
        select(subscribers.c.id).where(subscribers.c.status == SubscriberStatus.PENDING.value,
                                       subscribers.c.updated_at < before,
                                       subscribers.c.id.not_in(
                                           subscribers_requesting_since(before)))
        .order_by(subscribers.c.id)
    ).scalars())


def data_held(conn: Connection, address: str) -> dict | None:
    """Everything held about an address: profile, consent history, suppression, mailings,
    and the records merged into it."""
    row = conn.execute(select(subscribers).where(same_address(address))).first()
    hashed = email_hash(address)
    suppression = conn.execute(
        select(suppressions).where(suppressions.c.email_hash == hashed)).first()
    merged = _merged_records(conn, hashed)
    if row is None and suppression is None and not merged:
        return None
    ledger = conn.execute(
        select(consent_events).where(or_(
            consent_events.c.email_hash == hashed,
            consent_events.c.subscriber_id == (row.id if row else -1),
        )).order_by(consent_events.c.occurred_at, consent_events.c.id)
    ).all()
    waiting = pending_request(conn, row.id) if row else None
    return {
        "subscriber": _profile(row) if row else None,
        "pending_request": waiting.as_dict() if waiting else None,
        "consent_history": [_event(e) for e in ledger],
        "suppression": {"reason": suppression.reason,
                        "since": suppression.created_at.isoformat()} if suppression else None,
        "mailings": _mailings(conn, row.id) if row else [],
        "merged_records": merged,
    }


def _merged_records(conn: Connection, hashed: str) -> list[dict]:
    """The rows migration 0012 merged away: a second subscription to the address in another
    letter case, unsubscribed under a placeholder address but with its name, preferences,
    dates and mailings kept (its consent history is in the address's own)."""
    merges = conn.execute(
        select(subscribers, consent_events.c.occurred_at.label("merged_at"),
               consent_events.c.source.label("merged_by"))
        .join(consent_events, consent_events.c.subscriber_id == subscribers.c.id)
        .where(consent_events.c.email_hash == hashed, consent_events.c.event == "merged",
               subscribers.c.status != SubscriberStatus.ERASED.value)
        .order_by(subscribers.c.id)).all()
    return [{"merged_at": m.merged_at.isoformat(), "merged_by": m.merged_by,
             "record": _profile(m), "mailings": _mailings(conn, m.id)} for m in merges]


def _profile(row) -> dict:
    stamp = lambda v: v.isoformat() if v else None  # noqa: E731
    return {
        "email": row.email, "name": row.name, "status": row.status,
        "sections": list(row.sections), "themes": list(row.themes), "source": row.source,
        "created_at": stamp(row.created_at), "updated_at": stamp(row.updated_at),
        "confirmed_at": stamp(row.confirmed_at), "unsubscribed_at": stamp(row.unsubscribed_at),
    }


def _event(e) -> dict:
    return {
        "event": e.event, "occurred_at": e.occurred_at.isoformat(), "source": e.source,
        "consent_text_version": e.consent_text_version, "ip": e.ip,
        "user_agent": e.user_agent, "details": e.details,
    }


def _mailings(conn: Connection, subscriber_id: int) -> list[dict]:
    rows = conn.execute(select(outbox).where(outbox.c.subscriber_id == subscriber_id)
                        .order_by(outbox.c.id)).all()
    result = []
    for r in rows:
        issue = issue_by_id(conn, r.issue_id)
        result.append({"issue": issue.period if issue else r.issue_id, "status": r.status,
                       "sent_at": r.sent_at.isoformat() if r.sent_at else None})
    return result
