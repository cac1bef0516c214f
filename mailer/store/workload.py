"""What sending workers ask the store: which issues are being sent, and what is left to do."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, exists, func, or_, select

from mailer.models import IssueStatus, OutboxStatus
from mailer.store.tables import issues, outbox


def sending_issue_ids(conn: Connection) -> list[int]:
    """Issues in status `sending` whose outbox is filled, oldest first: the ones workers
    drain. (One still being filled could look done before all its rows are in.)"""
    return list(conn.execute(
        select(issues.c.id).where(issues.c.status == IssueStatus.SENDING.value,
                                  issues.c.enqueued_at.is_not(None))
        .order_by(issues.c.id)
    ).scalars())


def _due(now: datetime):
    return or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now)


def has_open_work(conn: Connection, issue_ids: list[int], now: datetime) -> bool:
    """Whether any of these issues has a due queued row or a row in flight (any lease)."""
    if not issue_ids:
        return False
    queued = exists().where(outbox.c.issue_id.in_(issue_ids),
                            outbox.c.status == OutboxStatus.QUEUED.value, _due(now))
    sending = exists().where(outbox.c.issue_id.in_(issue_ids),
                             outbox.c.status == OutboxStatus.SENDING.value)
    return bool(conn.execute(select(or_(queued, sending))).scalar())


def next_wake(conn: Connection, issue_ids: list[int]) -> datetime | None:
    """The earliest moment new work appears by itself: a retry falls due or a lease expires."""
    if not issue_ids:
        return None
    retry = select(func.min(outbox.c.next_attempt_at)).where(and_(
        outbox.c.issue_id.in_(issue_ids), outbox.c.status == OutboxStatus.QUEUED.value))
    lease = select(func.min(outbox.c.lease_until)).where(and_(
        outbox.c.issue_id.in_(issue_ids), outbox.c.status == OutboxStatus.SENDING.value))
    moments = [conn.execute(q).scalar() for q in (retry, lease)]
    known = [m for m in moments if m is not None]
    return min(known) if known else None
