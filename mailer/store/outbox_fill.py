"""Filling an issue's outbox: a queued row for every active subscriber, the rendering of
each segment the rows need, and the rows of segments with nothing (new) for them skipped.

Claiming, recording and reporting on the rows is `mailer.store.outbox`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, String, and_, cast, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from mailer.models import OutboxStatus, SubscriberStatus
from mailer.store.tables import MAX_ID, issue_renders, issues, outbox, subscribers


def enqueue_issue(conn: Connection, issue_id: int, message_domain: str, now: datetime,
                  ids: IdRange | None = None) -> int:
    """Add a queued row for every active subscriber (in `ids`, if given) not yet in this
    issue's outbox; returns how many were added.

    Set-based (INSERT ... SELECT), so a million subscribers never pass through Python;
    each row takes the subscriber's segment key in the same statement. The unique
    (issue, subscriber) index skips those already there (ON CONFLICT DO NOTHING), so a
    second run adds nobody twice; no anti-join, whose plan can go quadratic while the
    statement inserts into the very table it probes.
    """
    statement = _insert_ignoring_duplicates(conn, _ROW_COLUMNS, _rows_to_enqueue(
        issue_id, message_domain, now, ids))
    return _inserted(conn, statement)


def enqueue_range(conn: Connection, issue_id: int, message_domain: str, now: datetime,
                  ids: IdRange) -> int:
    """Add a queued row for every active subscriber in `ids` not yet in this issue's
    outbox, like `enqueue_issue`; returns how many were added.

    A range with no rows yet (every range of a first enqueue) gets a plain INSERT: ON
    CONFLICT makes each row a speculative insertion, about a tenth of the server's work
    for a million rows. Should another enqueuer fill part of the range meanwhile, the
    unique index stops the plain INSERT and the range is redone skipping duplicates.
    """
    if range_started(conn, issue_id, ids):
        return enqueue_issue(conn, issue_id, message_domain, now, ids)
    rows = _rows_to_enqueue(issue_id, message_domain, now, ids)
    try:
        with conn.begin_nested():
            return _inserted(conn, insert(outbox).from_select(_ROW_COLUMNS, rows))
    except IntegrityError:
        return enqueue_issue(conn, issue_id, message_domain, now, ids)


def range_started(conn: Connection, issue_id: int, ids: IdRange) -> bool:
    """Whether the issue's outbox already holds a row of a subscriber in `ids`."""
    return conn.execute(select(outbox.c.id).where(
        outbox.c.issue_id == issue_id, outbox.c.subscriber_id > ids.after,
        outbox.c.subscriber_id <= ids.upto).limit(1)).first() is not None


_ROW_COLUMNS = ["issue_id", "subscriber_id", "email", "segment_key", "status", "attempts",
                "message_id", "possible_duplicate", "created_at", "updated_at"]


def _rows_to_enqueue(issue_id: int, message_domain: str, now: datetime,
                     ids: IdRange | None):
    message_id = (
        literal("<weerbaarnl.") + cast(literal(issue_id), String) + literal(".")
        + cast(subscribers.c.id, String) + literal(f"@{message_domain}>")
    )
    source = select(
        literal(issue_id), subscribers.c.id, subscribers.c.email, subscribers.c.segment_key,
        literal(OutboxStatus.QUEUED.value), literal(0), message_id,
        literal(False), literal(now, type_=outbox.c.created_at.type),
        literal(now, type_=outbox.c.updated_at.type),
    ).where(subscribers.c.status == SubscriberStatus.ACTIVE.value)
    if ids is not None:
        source = source.where(subscribers.c.id > ids.after, subscribers.c.id <= ids.upto)
    return source


def _inserted(conn: Connection, statement) -> int:
    # SQLAlchemy reports INSERT row counts only when asked to keep them.
    return conn.execute(statement.execution_options(preserve_rowcount=True)).rowcount


@dataclass(frozen=True)
class IdRange:
    """Subscriber ids after `after` up to and including `upto`."""

    after: int
    upto: int


def active_subscriber_ranges(conn: Connection, span: int) -> list[IdRange]:
    """Consecutive ranges of `span` subscriber ids covering every active subscriber.

    Two index probes (the lowest and highest active id) rather than counting subscribers
    per range: a counting page query is planned from table statistics, and right after a
    bulk import there are none, so each page sorted the rest of the table (1.9 s for
    1,000,000 subscribers, against milliseconds). Gaps in the ids only make some ranges
    lighter. The last range is open-ended, so nobody who becomes active during the
    enqueue falls beyond a stale upper bound.
    """
    first, last = conn.execute(
        select(func.min(subscribers.c.id), func.max(subscribers.c.id))
        .where(subscribers.c.status == SubscriberStatus.ACTIVE.value)
    ).one()
    if first is None:
        return []
    starts = list(range(first - 1, last, span))
    return [IdRange(a, a + span) for a in starts[:-1]] + [IdRange(starts[-1], MAX_ID)]


def _insert_ignoring_duplicates(conn: Connection, columns: list[str], source):
    return (_dialect_insert(conn, outbox).from_select(columns, source)
            .on_conflict_do_nothing(index_elements=["issue_id", "subscriber_id"]))


def _dialect_insert(conn: Connection, table):
    # PostgreSQL and SQLite both know ON CONFLICT DO NOTHING; SQLAlchemy spells it per dialect.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def unrendered_segments(conn: Connection, issue_id: int) -> list[str]:
    """Segment keys present in an issue's outbox that have no rendering yet."""
    rendered = select(issue_renders.c.segment_key).where(issue_renders.c.issue_id == issue_id)
    query = (
        select(outbox.c.segment_key).distinct()
        .where(outbox.c.issue_id == issue_id, outbox.c.segment_key.not_in(rendered))
    )
    return list(conn.execute(query).scalars())


def save_render(conn: Connection, issue_id: int, segment_key: str, subject: str, html: str,
                text: str, counts: tuple[int, int], now: datetime) -> None:
    """Store the rendering every recipient of a segment will get, with its (item count,
    new item count).

    Two sends of one issue at once may both render a segment: the one that comes second
    keeps the stored rendering (of the same stored issue), rather than failing."""
    item_count, new_count = counts
    conn.execute(_dialect_insert(conn, issue_renders).values(
        issue_id=issue_id, segment_key=segment_key, subject=subject, html=html, text=text,
        item_count=item_count, new_count=new_count, created_at=now,
    ).on_conflict_do_nothing(index_elements=["issue_id", "segment_key"]))


def load_renders(conn: Connection, issue_id: int) -> dict[str, tuple[str, str, str]]:
    """Stored renderings of an issue: segment key -> (subject, html, text)."""
    rows = conn.execute(select(issue_renders).where(issue_renders.c.issue_id == issue_id))
    return {r.segment_key: (r.subject, r.html, r.text) for r in rows}


# Why a queued row is not sent because of what its segment gets (read by editors).
NOTHING_FOR_SEGMENT = "niet verstuurd: niets in dit nummer voor de gekozen onderdelen en thema's"
NOTHING_NEW_FOR_SEGMENT = ("niet verstuurd: niets nieuws voor de gekozen onderdelen en "
                           "thema's (alles stond al in een eerder nummer)")


def skip_segments_without_news(conn: Connection, issue_id: int, now: datetime) -> int:
    """Mark queued rows skipped whose segment has nothing in this issue, or nothing new
    unless the issue is sent even without news; returns how many."""
    renders = issue_renders.c
    reasons = {NOTHING_FOR_SEGMENT: renders.item_count == 0}
    even_without_news = conn.execute(
        select(issues.c.even_without_news).where(issues.c.id == issue_id)).scalar()
    if not even_without_news:
        reasons[NOTHING_NEW_FOR_SEGMENT] = and_(renders.item_count > 0, renders.new_count == 0)
    skipped = 0
    for reason, condition in reasons.items():
        keys = select(renders.segment_key).where(renders.issue_id == issue_id, condition)
        skipped += conn.execute(
            update(outbox)
            .where(outbox.c.issue_id == issue_id, outbox.c.status == OutboxStatus.QUEUED.value,
                   outbox.c.segment_key.in_(keys))
            .values(status=OutboxStatus.SKIPPED.value, last_error=reason, updated_at=now)
        ).rowcount or 0
    return skipped


def skip_reasons(conn: Connection, issue_id: int) -> dict[str, int]:
    """Skipped rows of an issue per reason, most first."""
    rows = conn.execute(
        select(outbox.c.last_error, func.count())
        .where(outbox.c.issue_id == issue_id, outbox.c.status == OutboxStatus.SKIPPED.value)
        .group_by(outbox.c.last_error).order_by(func.count().desc(), outbox.c.last_error))
    return {reason or "-": n for reason, n in rows}
