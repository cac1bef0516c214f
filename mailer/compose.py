"""Choosing what goes into an issue: new magazine items and upcoming events."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

import frontmatter
import markdown as md
import yaml
from sqlalchemy import Connection

from mailer import dutch
from mailer.clock import AMSTERDAM, Clock, local
from mailer.errors import ComposeError, ContentError
from mailer.models import Issue, ItemStatus, StoredItem
from mailer.sanitize import html_to_text, sanitize_html, shorten
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
    if issue_store.send_begun(existing):
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


def news_in(issue: Issue, items: Iterable[StoredItem]) -> list[StoredItem]:
    """The items that are news: on (not cancelled) and carried by no earlier issue.

    An event stays in the agenda until it takes place but is news only in the first issue
    that carries it: a later move or cancellation does not make it news again."""
    return [s for s in items if s.item.status is ItemStatus.ACTIVE and issue.is_new(s)]


def _with_texts(issue: Issue, settings: Settings) -> Issue:
    """Fill subject, preheader and intro: the editor's file wins over derived text."""
    content_dir = settings.path(settings.content_dir)
    editorial = read_editorial(content_dir, issue.issue_date)
    subject = editorial.get("subject") or derive_subject(issue, settings.list_name)
    preheader = editorial.get("preheader") or derive_preheader(issue)
    for name, value in (("subject", subject), ("preheader", preheader)):
        if problem := header_problem(value):
            # Editors read this: say in Dutch which file and field to fix.
            where = (f"{editorial_path(content_dir, issue.issue_date)}: het veld {name}"
                     if editorial.get(name) else f"het uit de inhoud afgeleide veld {name} "
                                                 f"({value!r})")
            raise ComposeError(f"{where} {problem}")
    return replace(issue, subject=subject, preheader=preheader, intro=editorial.get("intro"))


def header_problem(value: str) -> str | None:
    """Why a text cannot be a mail header (Dutch, for editors), or None when it can."""
    if "\r" in value or "\n" in value:
        return ("bevat een regeleinde; zet de tekst op één regel (een regeleinde maakt de "
                "kopregels van de mail kapot)")
    # YAML escapes let an editor write any character; U+2028 or NEL break the header as
    # a newline does, and a control character stops the MJML compiler.
    if bad := next((c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None):
        return (f"bevat het onzichtbare teken U+{ord(bad):04X} (een regeleinde of "
                "stuurteken); haal het weg")
    return None


def editorial_path(content_dir: Path, issue_date: date) -> Path:
    """Where the editors' file for an issue date lives: `content/issues/YYYY-MM-DD.md`."""
    return content_dir / "issues" / f"{issue_date.isoformat()}.md"


def read_editorial(content_dir: Path, issue_date: date) -> dict[str, str]:
    """The optional `content/issues/YYYY-MM-DD.md`: intro text and subject/preheader overrides."""
    path = editorial_path(content_dir, issue_date)
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
    """The inbox line after the subject: what else is inside, the news first.

    The subject names the lead article, else the first new event (see derive_subject);
    the preheader tells what comes with it and does not count that one again.
    """
    active = [e for e in issue.events if e.item.status is ItemStatus.ACTIVE]
    if issue.magazine:
        return _magazine_preheader(issue, active)
    if lead := _first_new(issue):
        return _event_preheader(issue, lead, [e for e in active if e is not lead])
    return _agenda_preheader(active)


def _magazine_preheader(issue: Issue, active: list[StoredItem]) -> str:
    """'Ook in dit nummer: <article>, <article> en nog 5 artikelen. In de agenda: …'."""
    others = [s.item.title for s in issue.magazine[1:]]
    if not others:
        if active:
            return f"Verder in dit nummer: de agenda met {_event_count(issue, active)}."
        return _teaser(issue.magazine[0])
    agenda = f" In de agenda: {_event_count(issue, active)}." if active else ""
    # Name fewer titles (at worst none: 'nog 3 artikelen') rather than cut the line or a title.
    for kept in range(min(len(others), 2), -1, -1):
        if len(text := _also(others, kept) + agenda) <= PREHEADER_MAX:
            return text
    return shorten(text, PREHEADER_MAX)  # not reached: the counts alone are short


def _also(titles: list[str], kept: int) -> str:
    """'Ook in dit nummer: a, b en nog 3 artikelen.', naming the first `kept` titles."""
    parts = titles[:kept]
    if rest := len(titles) - kept:
        parts.append(f"nog {rest} {'artikel' if rest == 1 else 'artikelen'}")
    listed = ", ".join(parts[:-1]) + (" en " if len(parts) > 1 else "") + parts[-1]
    return _sentence(f"Ook in dit nummer: {listed}")


def _event_preheader(issue: Issue, lead: StoredItem, others: list[StoredItem]) -> str:
    """When and where the event in the subject is, then what else the agenda holds."""
    item = lead.item
    when = dutch.event_when(item.starts_at, item.ends_at, item.all_day)
    # As the agenda shows it; a meeting link is no place to read in an inbox.
    place = "" if (item.location or "").startswith(("http://", "https://")) else item.location
    where = f"{place} en online" if place and item.online else place or (
        "online" if item.online else "")
    rest = (f"Verder in de agenda: {_event_count(issue, others)}." if others
            else "Lees verder voor alle details.")
    # A long address goes first when the line would not fit; the date and time stay.
    for first in ([f"{when}, {where}"] if where else []) + [when]:
        if len(text := f"{_sentence(first[0].upper() + first[1:])} {rest}") <= PREHEADER_MAX:
            return text
    return shorten(text, PREHEADER_MAX)


def _agenda_preheader(active: list[StoredItem]) -> str:
    """For a reader whose events were all in earlier issues: how many, and when the next."""
    if not active:
        return ""
    first = dutch.long_date(min(e.item.starts_at for e in active))
    if len(active) == 1:
        return f"In de agenda: 1 activiteit, op {first}."
    return f"In de agenda: {len(active)} activiteiten, de eerstvolgende op {first}."


def _event_count(issue: Issue, events: list[StoredItem]) -> str:
    """'7 activiteiten, waarvan 1 nieuw'; '2 nieuwe activiteiten' when all are new."""
    total, new = len(events), sum(issue.is_new(e) for e in events)
    noun = "activiteit" if total == 1 else "activiteiten"
    if new == total:
        return f"{total} nieuwe {noun}"
    return f"{total} {noun}" + (f", waarvan {new} nieuw" if new else "")


def _teaser(lead: StoredItem) -> str:
    """The only article's summary as plain text: the subject already names its title."""
    text = html_to_text(lead.item.summary or "", one_line=True)
    return shorten(text, PREHEADER_MAX) if text else (
        "In dit nummer lees je het nieuwe artikel van de redactie.")


def _sentence(text: str) -> str:
    """The text with a full stop, unless it already ends a sentence ('wat mag wel?')."""
    return text if text.endswith((".", "?", "!", "…")) else text + "."


def _first_new(issue: Issue) -> StoredItem | None:
    """The first event that is on and that no earlier issue carried."""
    return next(iter(news_in(issue, issue.events)), None)
