"""Choosing what goes into an issue: new magazine items and upcoming events."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

import frontmatter
import markdown as md
import yaml
from sqlalchemy import Connection

from mailer.clock import AMSTERDAM, Clock, local
from mailer.errors import ComposeError, ContentError
from mailer.models import Issue, ItemStatus, StoredItem
from mailer.sanitize import sanitize_html, shorten
from mailer.settings import Settings
from mailer.store import issues as issue_store
from mailer.store import items as item_store

# Inboxes show about 40-60 subject characters on phones; lint warns above this, so a
# derived subject never exceeds it (an editor's own subject may, and is warned about).
SUBJECT_MAX = 60
PREHEADER_MAX = 140


def issue_moment(settings: Settings, clock: Clock, on: date | None) -> datetime:
    """The instant an issue is composed for: now, or the send time on a given date."""
    if on is None:
        return clock.now()
    hour, minute = (int(p) for p in settings.send_time.split(":"))
    return datetime.combine(on, time(hour, minute), AMSTERDAM).astimezone(clock.now().tzinfo)


def period_of(moment: datetime) -> str:
    """The ISO week (Amsterdam time) an instant falls in, e.g. '2026-W49'."""
    year, week, _ = local(moment).isocalendar()
    return f"{year}-W{week:02d}"


def compose_issue(conn: Connection, settings: Settings, moment: datetime) -> Issue | None:
    """Compose the issue for a moment, or None when there is nothing new to send.

    Once sending has begun the stored issue is returned unchanged, so a resumed send
    delivers exactly what the first recipients got.
    """
    period = period_of(moment)
    existing = issue_store.issue_by_period(conn, settings.list_id, period)
    if existing and existing.frozen:
        return issue_store.load_issue(conn, existing)
    own_id = existing.id if existing else None
    previous = issue_store.previous_sent(conn, settings.list_id, moment)
    since = previous.moment if previous else moment - timedelta(settings.first_issue_lookback_days)
    magazine = item_store.magazine_candidates(conn, since, moment, exclude_issue=own_id)
    announced = issue_store.announced_item_ids(conn, settings.list_id, own_id)
    horizon = moment + timedelta(weeks=settings.event_horizon_weeks)
    events = [
        e for e in item_store.upcoming_events(conn, moment, horizon)
        if e.item.status is ItemStatus.ACTIVE or e.id in announced
    ]
    new_events = [e for e in events if e.id not in announced and e.item.status is ItemStatus.ACTIVE]
    if not magazine and not new_events:
        return None
    # A draft is renumbered like it is recomposed: it gets its number when it goes out.
    number = issue_store.next_number(conn, settings.list_id)
    issue = Issue(
        list_id=settings.list_id, period=period, issue_date=local(moment).date(), moment=moment,
        subject="", preheader="", intro=None, magazine=tuple(magazine), events=tuple(events),
        number=number, id=own_id, announced=frozenset(announced & {e.id for e in events}),
    )
    return _with_texts(issue, settings)


def _with_texts(issue: Issue, settings: Settings) -> Issue:
    """Fill subject, preheader and intro: the editor's file wins over derived text."""
    editorial = read_editorial(settings.path(settings.content_dir), issue.issue_date)
    subject = editorial.get("subject") or derive_subject(issue, settings.list_name)
    preheader = editorial.get("preheader") or derive_preheader(issue)
    for name, value in (("subject", subject), ("preheader", preheader)):
        if "\r" in value or "\n" in value:
            raise ComposeError(f"{name} contains a line break, which would corrupt mail headers")
        # YAML escapes let an editor write any character; U+2028 or NEL break the header as
        # a newline does, and a control character stops the MJML compiler.
        if bad := next((c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")),
                       None):
            raise ComposeError(f"{name} contains the invisible character U+{ord(bad):04X} "
                               "(a line break or control character); remove it")
    return replace(issue, subject=subject, preheader=preheader, intro=editorial.get("intro"))


def read_editorial(content_dir: Path, issue_date: date) -> dict[str, str]:
    """The optional `content/issues/YYYY-MM-DD.md`: intro text and subject/preheader overrides."""
    path = content_dir / "issues" / f"{issue_date.isoformat()}.md"
    if not path.is_file():
        return {}
    try:
        # utf-8-sig: a byte order mark would hide the front matter and put it in the intro.
        post = frontmatter.loads(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, ValueError) as exc:
        raise ContentError(str(path), f"front matter is not valid: {exc}") from None
    result = {k: str(post.metadata[k]) for k in ("subject", "preheader") if post.metadata.get(k)}
    if post.content.strip():
        result["intro"] = sanitize_html(md.markdown(post.content))
    return result


def derive_subject(issue: Issue, list_name: str) -> str:
    """'WeerbaarNL nr. 4: <lead article>' (or the first new event when there is no article).

    An event an earlier issue already carried is no news: it never headlines.
    """
    lead = issue.magazine[0] if issue.magazine else _first_new(issue)
    title = lead.item.title if lead else "de agenda voor de komende weken"
    # Shortened as a whole, so even a long list name keeps the subject within the limit.
    return shorten(f"{list_name} nr. {issue.number}: {title}", SUBJECT_MAX)


def derive_preheader(issue: Issue) -> str:
    """A line naming what else is inside, for the inbox preview."""
    titles = [s.item.title for s in issue.magazine[1:3]]
    active = [e for e in issue.events if e.item.status is ItemStatus.ACTIVE]
    tail = []
    if active:
        word = "activiteit" if len(active) == 1 else "activiteiten"
        tail.append(f"{len(active)} {word} in de agenda")
    if not titles and not tail:
        return shorten(issue.magazine[0].item.title if issue.magazine else "", PREHEADER_MAX)
    # Name fewer titles rather than cut the line: a cut loses the agenda count at its end.
    for kept in range(len(titles), 0, -1):
        if len(text := _also(titles[:kept] + tail)) <= PREHEADER_MAX:
            return text
    if not titles:
        return _also(tail)
    room = PREHEADER_MAX - len(_also(["", *tail]))
    return _also([shorten(titles[0], room), *tail])


def _also(parts: list[str]) -> str:
    """'Ook: a, b en c'."""
    return "Ook: " + ", ".join(parts[:-1]) + (" en " if len(parts) > 1 else "") + parts[-1]


def _first_new(issue: Issue) -> StoredItem | None:
    """The first event that is on and that no earlier issue carried."""
    return next((e for e in issue.events
                 if e.item.status is ItemStatus.ACTIVE and issue.is_new(e)), None)
