"""Sliding-window rate limits kept in the database, so every web worker sees the same counts."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select

from mailer.store.tables import rate_limit_hits


def limit_key(kind: str, value: str) -> str:
    """A bucket name that does not store the address or IP itself: kind plus a hash."""
    return f"{kind}:{hashlib.sha256(value.lower().encode()).hexdigest()[:40]}"


def hits_since(conn: Connection, key: str, since: datetime) -> int:
    """How many hits a bucket had since a moment."""
    return conn.execute(
        select(func.count()).where(rate_limit_hits.c.key == key,
                                   rate_limit_hits.c.occurred_at >= since)
    ).scalar() or 0


def allow(conn: Connection, key: str, limit: int, window: timedelta, now: datetime) -> int | None:
    """Record a hit if the bucket is under its limit; returns the hit's id, or None if full.

    Run it inside the caller's write transaction: on SQLite that is BEGIN IMMEDIATE and on
    PostgreSQL the count may race by one hit at worst, which a rate limit can live with.
    """
    if hits_since(conn, key, now - window) >= limit:
        return None
    return conn.execute(
        insert(rate_limit_hits).values(key=key, occurred_at=now)
    ).inserted_primary_key[0]


def release(conn: Connection, hit_ids: list[int]) -> None:
    """Take hits back (a mail counted but never sent): the limit counts mails, not tries."""
    conn.execute(delete(rate_limit_hits).where(rate_limit_hits.c.id.in_(hit_ids)))
