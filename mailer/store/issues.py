"""Issues and their items: one issue per (list, period), kept with the items it holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeGuard

from sqlalchemy import Connection, delete, exists, func, insert, literal, select, update

from mailer.models import Issue, IssueStatus
from mailer.store.items import items_by_id
from mailer.store.tables import archive_changes, issue_items, issue_web_versions, issues

FROZEN = (IssueStatus.SENDING, IssueStatus.PAUSED, IssueStatus.SENT)


@dataclass(frozen=True)
class IssueRecord:
    """An issue row as stored."""

    id: int
    list_id: str
    period: str
    number: int
    issue_date: date
    moment: datetime
    subject: str
    preheader: str
    intro: str | None
    status: IssueStatus
    created_at: datetime
    sent_at: datetime | None
    status_note: str | None
    even_without_news: bool = False  # also to segments with nothing new for them

    @property
    def frozen(self) -> bool:
        """Whether sending has begun: its content may no longer change."""
        return self.status in FROZEN


def send_begun(record: IssueRecord | None) -> TypeGuard[IssueRecord]:
    """Whether an issue (None: not stored) has begun sending: what it holds is fixed."""
    return record is not None and record.frozen


def _record(row) -> IssueRecord:
    return IssueRecord(
        id=row.id, list_id=row.list_id, period=row.period, number=row.number,
        issue_date=row.issue_date, moment=row.moment, subject=row.subject,
        preheader=row.preheader, intro=row.intro, status=IssueStatus(row.status),
        created_at=row.created_at, sent_at=row.sent_at, status_note=row.status_note,
        even_without_news=row.even_without_news,
    )


def issue_by_period(conn: Connection, list_id: str, period: str) -> IssueRecord | None:
    """The issue of a list for a period, if any."""
    row = conn.execute(
        select(issues).where(issues.c.list_id == list_id, issues.c.period == period)
    ).first()
    return _record(row) if row else None


def issue_by_id(conn: Connection, issue_id: int) -> IssueRecord | None:
    """One issue by id."""
    row = conn.execute(select(issues).where(issues.c.id == issue_id)).first()
    return _record(row) if row else None


def list_issues(conn: Connection, list_id: str | None = None) -> list[IssueRecord]:
    """All issues, newest first."""
    query = select(issues).order_by(issues.c.moment.desc(), issues.c.id.desc())
    if list_id:
        query = query.where(issues.c.list_id == list_id)
    return [_record(r) for r in conn.execute(query)]


def previous_sent(conn: Connection, list_id: str, before: datetime) -> IssueRecord | None:
    """The latest issue whose sending began before a moment."""
    row = conn.execute(
        select(issues)
        .where(issues.c.list_id == list_id, issues.c.moment < before)
        .where(issues.c.status.in_([s.value for s in FROZEN]))
        .order_by(issues.c.moment.desc())
        .limit(1)
    ).first()
    return _record(row) if row else None


def announced_item_ids(conn: Connection, list_id: str, exclude_issue: int | None) -> set[int]:
    """Ids of items that appeared in an issue whose sending began."""
    query = (
        select(issue_items.c.item_id)
        .join(issues, issues.c.id == issue_items.c.issue_id)
        .where(issues.c.list_id == list_id, issues.c.status.in_([s.value for s in FROZEN]))
    )
    if exclude_issue is not None:
        query = query.where(issues.c.id != exclude_issue)
    return set(conn.execute(query).scalars())


def next_number(conn: Connection, list_id: str) -> int:
    """The number the next issue of a list to go out gets.

    Only issues whose sending began count: a draft that never went out (a proofed week
    with too little content, a held issue) must not leave a gap subscribers would notice.
    """
    return (conn.execute(
        select(func.max(issues.c.number))
        .where(issues.c.list_id == list_id, issues.c.status.in_([s.value for s in FROZEN]))
    ).scalar() or 0) + 1


def save_issue(conn: Connection, issue: Issue, now: datetime) -> int:
    """Store a composed issue as a draft (or refresh an existing draft); returns its id.

    Racing composers meet at the (list, period) unique constraint: the loser's insert
    fails and it should re-read the winner's issue.
    """
    values = dict(
        list_id=issue.list_id, period=issue.period, number=issue.number,
        issue_date=issue.issue_date, moment=issue.moment, subject=issue.subject,
        preheader=issue.preheader, intro=issue.intro,
    )
    if issue.id is None:
        issue_id = conn.execute(
            insert(issues).values(**values, status=IssueStatus.DRAFT.value, created_at=now)
        ).inserted_primary_key[0]
    else:
        issue_id = issue.id
        conn.execute(update(issues).where(issues.c.id == issue_id).values(**values))
        conn.execute(delete(issue_items).where(issue_items.c.issue_id == issue_id))
    rows = [
        dict(issue_id=issue_id, item_id=s.id, section=section, position=i)
        for section, group in (("magazine", issue.magazine), ("agenda", issue.events))
        for i, s in enumerate(group)
    ]
    if rows:
        conn.execute(insert(issue_items), rows)
    return issue_id


def set_issue_status(
    conn: Connection, issue_id: int, status: IssueStatus, now: datetime, note: str | None = None
) -> None:
    """Move an issue to a status, stamping when sending began and ended."""
    values: dict = {"status": status.value, "status_note": note}
    if status is IssueStatus.SENDING:
        values["send_started_at"] = func.coalesce(issues.c.send_started_at, now)
    if status is IssueStatus.SENT:
        values["sent_at"] = now
    conn.execute(update(issues).where(issues.c.id == issue_id).values(**values))


def mark_sent(conn: Connection, issue_id: int, now: datetime) -> bool:
    """Mark an issue being sent (or sent) as sent; False when it is not, e.g. paused."""
    return conn.execute(
        update(issues).where(issues.c.id == issue_id, issues.c.status.in_(
            [IssueStatus.SENDING.value, IssueStatus.SENT.value]))
        .values(status=IssueStatus.SENT.value, status_note=None, sent_at=now)
    ).rowcount == 1


def pause_if_sending(conn: Connection, issue_id: int, note: str) -> bool:
    """Pause an issue being sent, saying why; False when it is not being sent (e.g. held,
    or paused already by someone else, whose reason stays)."""
    return conn.execute(
        update(issues).where(issues.c.id == issue_id,
                             issues.c.status == IssueStatus.SENDING.value)
        .values(status=IssueStatus.PAUSED.value, status_note=note)
    ).rowcount == 1


def send_even_without_news(conn: Connection, issue_id: int) -> None:
    """Record that the issue goes also to segments with nothing new for them.

    Kept for good: a resumed send (or the retry job) decides the same way as the first."""
    conn.execute(update(issues).where(issues.c.id == issue_id).values(even_without_news=True))


def mark_enqueued(conn: Connection, issue_id: int, now: datetime) -> None:
    """Record that the issue's outbox holds every recipient: workers may drain it now."""
    conn.execute(update(issues).where(issues.c.id == issue_id, issues.c.enqueued_at.is_(None))
                 .values(enqueued_at=now))


def load_issue(conn: Connection, record: IssueRecord) -> Issue:
    """The full Issue of a stored record, with its items in their stored order."""
    rows = conn.execute(
        select(issue_items).where(issue_items.c.issue_id == record.id)
        .order_by(issue_items.c.section, issue_items.c.position)
    ).all()
    found = items_by_id(conn, [r.item_id for r in rows])
    # As compose_issue counts them, so subjects derived again per segment agree with it.
    announced = announced_item_ids(conn, record.list_id, record.id) & set(found)
    section = {name: tuple(found[r.item_id] for r in rows if r.section == name)
               for name in ("magazine", "agenda")}
    return Issue(
        list_id=record.list_id, period=record.period, issue_date=record.issue_date,
        moment=record.moment, subject=record.subject, preheader=record.preheader,
        intro=record.intro, magazine=section["magazine"], events=section["agenda"],
        number=record.number, id=record.id, announced=frozenset(announced),
    )


def has_web_version(conn: Connection, issue_id: int) -> bool:
    """Whether the issue's public web version has been kept."""
    return conn.execute(select(exists().where(issue_web_versions.c.issue_id == issue_id))
                        ).scalar_one()


def keep_web_version(conn: Connection, issue_id: int, html: str, now: datetime) -> None:
    """Keep the issue's public web version, unless one is kept already (the first stays).

    Call it after `set_issue_status` in the same transaction: that update locks the issue
    row, so two sends beginning at once get here one after the other and the second finds
    the first one's row (no unique violation)."""
    values = select(literal(issue_id), literal(html), literal(now)).where(
        ~exists().where(issue_web_versions.c.issue_id == issue_id))
    conn.execute(insert(issue_web_versions).from_select(["issue_id", "html", "created_at"],
                                                        values))


def kept_web_version(conn: Connection, issue_id: int) -> str | None:
    """The public web version kept when the issue's sending began; None before 0016."""
    return conn.execute(select(issue_web_versions.c.html)
                        .where(issue_web_versions.c.issue_id == issue_id)).scalar()


@dataclass(frozen=True)
class ArchiveChange:
    """An editor taking an issue off the public archive (`unpublished`) or putting it back."""

    unpublished: bool
    by: str
    reason: str | None
    at: datetime


def archive_history(conn: Connection, issue_id: int) -> list[ArchiveChange]:
    """Every time the issue was taken off the archive or put back, oldest first."""
    rows = conn.execute(select(archive_changes).where(archive_changes.c.issue_id == issue_id)
                        .order_by(archive_changes.c.id))
    return [ArchiveChange(r.unpublished, r.changed_by, r.reason, r.changed_at) for r in rows]


def unpublished_since(conn: Connection, issue_id: int) -> ArchiveChange | None:
    """The change that took the issue off the archive, while it is off; else None."""
    history = archive_history(conn, issue_id)
    return history[-1] if history and history[-1].unpublished else None


def unpublished_issue_ids(conn: Connection) -> set[int]:
    """The issues taken off the archive: those whose latest change says so."""
    latest = select(func.max(archive_changes.c.id)).group_by(archive_changes.c.issue_id)
    return set(conn.execute(select(archive_changes.c.issue_id).where(
        archive_changes.c.id.in_(latest), archive_changes.c.unpublished.is_(True))).scalars())


def change_archive(conn: Connection, issue_id: int, change: ArchiveChange) -> bool:
    """Record taking the issue off the archive or putting it back; False (nothing
    recorded) when it is so already."""
    if (unpublished_since(conn, issue_id) is not None) == change.unpublished:
        return False
    conn.execute(insert(archive_changes).values(
        issue_id=issue_id, unpublished=change.unpublished, changed_by=change.by,
        reason=change.reason, changed_at=change.at))
    return True
