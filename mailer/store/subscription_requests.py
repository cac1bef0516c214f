"""Pending subscribe requests: what a request for a known address asks, kept apart from
the record until the address confirms it (see `subscriptions.subscribe` and `confirm`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from mailer.models import SECTIONS, Preferences
from mailer.store.tables import subscription_requests


@dataclass(frozen=True)
class PendingRequest:
    """A subscribe request waiting for its confirm link: who asked for what, and when."""

    id: int
    subscriber_id: int
    name: str
    preferences: Preferences
    requested_at: datetime

    def as_dict(self) -> dict:
        """The request as the access and export commands show it."""
        return {"name": self.name, "sections": sorted(self.preferences.sections),
                "themes": sorted(self.preferences.themes),
                "requested_at": self.requested_at.isoformat()}


def _from(row) -> PendingRequest:
    return PendingRequest(row.id, row.subscriber_id, row.name,
                          Preferences(frozenset(row.sections), frozenset(row.themes)),
                          row.requested_at)


def pending_request(conn: Connection, subscriber_id: int) -> PendingRequest | None:
    """The request waiting for a subscriber's confirmation, if any."""
    row = conn.execute(select(subscription_requests).where(
        subscription_requests.c.subscriber_id == subscriber_id)).first()
    return _from(row) if row else None


def pending_requests(conn: Connection, subscriber_ids: list[int]) -> dict[int, PendingRequest]:
    """The waiting requests of several subscribers, by subscriber id."""
    if not subscriber_ids:
        return {}
    rows = conn.execute(select(subscription_requests).where(
        subscription_requests.c.subscriber_id.in_(subscriber_ids))).all()
    return {r.subscriber_id: _from(r) for r in rows}


def replace_request(conn: Connection, subscriber_id: int, name: str,
                    preferences: Preferences, now: datetime) -> PendingRequest:
    """Store a request for a subscriber, superseding any earlier one (it gets a new id, so
    a link sent for the earlier one no longer matches)."""
    drop_request(conn, subscriber_id)
    values = dict(subscriber_id=subscriber_id, name=name,
                  sections=sorted(preferences.sections & set(SECTIONS)),
                  themes=sorted(preferences.themes), requested_at=now)
    conn.execute(insert(subscription_requests).values(**values))
    return pending_request(conn, subscriber_id)  # type: ignore[return-value]


def drop_request(conn: Connection, subscriber_id: int) -> None:
    """Delete a subscriber's waiting request, if any."""
    conn.execute(delete(subscription_requests).where(
        subscription_requests.c.subscriber_id == subscriber_id))


def drop_requests_before(conn: Connection, before: datetime) -> int:
    """Delete requests made before a moment (their links expired long ago); returns how
    many."""
    return conn.execute(delete(subscription_requests).where(
        subscription_requests.c.requested_at < before)).rowcount


def subscribers_requesting_since(since: datetime):
    """A select of the subscriber ids with a request made at or after a moment."""
    return select(subscription_requests.c.subscriber_id).where(
        subscription_requests.c.requested_at >= since)
