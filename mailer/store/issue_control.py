"""Editorial control over the scheduled send: hold an issue, release it, start its send.

Each is one conditional UPDATE, so a hold and a scheduled start cannot both win: either
the hold lands first and the send sees HELD, or the send has begun and the hold is refused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select, update

from mailer.errors import MailerError
from mailer.models import IssueStatus
from mailer.store.tables import issues


class IssueStateError(MailerError):
    """An issue is not in a state that allows what was asked."""


def issue_status(conn: Connection, issue_id: int) -> IssueStatus:
    """The status of an issue; IssueStateError if there is no such issue."""
    value = conn.execute(select(issues.c.status).where(issues.c.id == issue_id)).scalar()
    if value is None:
        raise IssueStateError(f"issue {issue_id} does not exist (see mailer issues list)")
    return IssueStatus(value)


def begin_send(conn: Connection, issue_id: int, now: datetime) -> IssueStatus:
    """Move a draft (or an unfinished send) to sending; returns the status it is in after.

    Anything else (held, paused, sent) is left alone and returned, for the caller to act on.
    """
    conn.execute(
        update(issues)
        .where(issues.c.id == issue_id,
               issues.c.status.in_([IssueStatus.DRAFT.value, IssueStatus.SENDING.value]))
        .values(status=IssueStatus.SENDING.value,
                send_started_at=func.coalesce(issues.c.send_started_at, now))
    )
    return issue_status(conn, issue_id)


def hold_issue(conn: Connection, issue_id: int, note: str | None = None) -> bool:
    """Hold an issue whose send has not begun; False if it was already held."""
    status = issue_status(conn, issue_id)
    if status is IssueStatus.HELD:
        return False
    done = conn.execute(
        update(issues).where(issues.c.id == issue_id, issues.c.status == IssueStatus.DRAFT.value)
        .values(status=IssueStatus.HELD.value, status_note=note or "held by the editors")
    ).rowcount
    if not done:
        raise IssueStateError(f"issue {issue_id} is {issue_status(conn, issue_id)}: only an "
                              "issue whose send has not begun can be held")
    return True


def release_issue(conn: Connection, issue_id: int) -> None:
    """Let a held issue go out again at the next scheduled run."""
    done = conn.execute(
        update(issues).where(issues.c.id == issue_id, issues.c.status == IssueStatus.HELD.value)
        .values(status=IssueStatus.DRAFT.value, status_note=None)
    ).rowcount
    if not done:
        raise IssueStateError(f"issue {issue_id} is {issue_status(conn, issue_id)}, not held")
