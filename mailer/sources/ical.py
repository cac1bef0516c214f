"""iCalendar (.ics) agendas, read with icalendar and expanded with recurring-ical-events.

Every occurrence within the horizon is its own event item. Occurrences of a series are
identified by UID plus their original start (RECURRENCE-ID), so a moved occurrence is an
edit, not a new event. An occurrence removed with EXDATE or marked STATUS:CANCELLED is
yielded as cancelled: if it was already announced, the next issue says it is called off.
The calendar is a full listing, so within the expanded window a missing occurrence is gone.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, ClassVar

import icalendar
import recurring_ical_events

from mailer.clock import AMSTERDAM
from mailer.errors import ContentError, Failure
from mailer.models import Item, ItemKind, ItemStatus
from mailer.sanitize import fit_summary, html_to_text, plain_without_leading_debris
from mailer.sources import Window, register
from mailer.sources.boilerplate import drop_own_link_lines
from mailer.sources.http import Document
from mailer.sources.ical_lines import calendar_from_ical
from mailer.sources.ical_zones import all_of, place_calendar_zone, place_named_zones
from mailer.sources.remote import RemoteSource, is_online, summarize
from mailer.sources.shortcodes import drop_shortcodes
from mailer.sources.windows_zones import zone_for_tzid

VTIMEZONE = re.compile(rb"BEGIN:VTIMEZONE\r?\n.*?END:VTIMEZONE\r?\n", re.DOTALL)
VALARM = re.compile(rb"BEGIN:VALARM\r?\n.*?END:VALARM\r?\n", re.DOTALL)
ACCEPT = "text/calendar, application/calendar+json;q=0.5, */*;q=0.1"
# Google Calendar writes DESCRIPTION as HTML (<br>, <a href>, &nbsp;) although RFC 5545 says
# plain text; Outlook 12 writes numeric entities. A tag marks a text as HTML.
HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>")


@register
class ICalSource(RemoteSource):
    """An .ics calendar at `location` (http, https or file)."""

    kind: ClassVar[str] = "ical"
    options: ClassVar[frozenset[str]] = RemoteSource.options | {"event_type", "horizon_weeks"}

    def fetch(self) -> list[Item]:
        """Fetch the calendar and yield one item per occurrence in [now, now + horizon)."""
        self.problems = []
        doc = self.get(self.config.location, conditional=True, accept=ACCEPT)
        if doc.not_modified:
            return []
        calendar, note = parse_calendar(doc)
        if note:
            self.problem("calendar", note)
        self._repair(calendar)
        start = self.clock.now()
        weeks = self.option("horizon_weeks")
        end = start + (timedelta(weeks=int(weeks)) if weeks else self.horizon)
        floating = _floating_zone(calendar)
        recurring = _recurring_uids(calendar)
        items: dict[str, Item] = {}
        singles, series = _split(calendar, recurring)
        self._check_series(series, floating)
        try:
            occurrences = recurring_ical_events.of(series, skip_bad_series=True).between(
                start, end)
        except Exception as exc:  # noqa: BLE001 - a third-party parser on untrusted input
            raise ContentError(doc.url, f"cannot expand the calendar's events: {exc}",
                               Failure.INVALID_CALENDAR, parser=str(exc)) from None
        for component in [*self._within(singles, start, end, floating), *occurrences]:
            item = self._item(component, recurring, floating, doc.url)
            if item is not None:
                items.setdefault(item.source_id, item)
        for item in self._excluded(calendar, start, end, floating, doc.url):
            items.setdefault(item.source_id, item)
        self.window = Window("starts_at", start, end)
        return list(items.values())

    def _repair(self, calendar: Any) -> None:
        """Give events without UID a derived one and unresolved TZIDs their zone; report the
        events taken out because neither can be done."""
        for twin in give_missing_uids(calendar):
            self.problem(f"event {twin}", "another event without UID has the same DTSTART and "
                                          "SUMMARY; skipped")
        for tzid, count in place_named_zones(calendar).items():
            self.problem("calendar", f"unknown time zone {tzid!r} (no VTIMEZONE, no IANA, "
                                     f"Windows or Outlook name); {_events(count)} skipped")
        unknown = place_calendar_zone(calendar)
        if unknown is not None and unknown[1]:
            self.problem("calendar", f"unknown time zone {unknown[0]!r} in X-WR-TIMEZONE (no "
                                     f"IANA, Windows or Outlook name); {_events(unknown[1])} "
                                     "skipped")

    def _item(self, event: Any, recurring: set[str], floating: tzinfo, base: str) -> Item | None:
        uid = str(event.get("UID") or "").strip()
        title = html_to_text(str(event.get("SUMMARY") or ""), one_line=True)
        where = f"event {uid or title or _raw_start(event) or '?'}"
        missing = [name for name, value in (("UID", uid), ("SUMMARY", title)) if not value]
        if missing:
            self.problem(where, f"event without {' and '.join(missing)}; skipped")
            return None
        try:
            starts, ends, all_day = _span(event, floating)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            self.problem(where, f"unusable DTSTART/DTEND/DURATION ({exc}); skipped")
            return None
        source_id = uid
        if uid in recurring:
            original = (event.get("RECURRENCE-ID") or event["DTSTART"]).dt
            source_id = f"{uid}/{_stamp(_day_if_midnight(original, all_day), floating)}"
        link = self.link(str(event.get("URL") or "") or None, base)
        if not link:
            self.problem(where, "event has no URL and the source sets no `link`; skipped")
            return None
        location = html_to_text(str(event.get("LOCATION") or ""), one_line=True) or None
        tags = _categories(event)
        cancelled = str(event.get("STATUS") or "").upper() == "CANCELLED"
        return Item(
            source=self.name, source_id=source_id[:500], kind=ItemKind.EVENT, title=title,
            url=link, summary=_description(event, self.summary_chars(), link),
            starts_at=starts, ends_at=ends, all_day=all_day, location=location,
            online=is_online(location), event_type=self.event_type_for(tags),
            topics=self.topics_for(tags),
            status=ItemStatus.CANCELLED if cancelled else ItemStatus.ACTIVE,
        )

    def _within(self, events: list[Any], start: datetime, end: datetime,
                floating: tzinfo) -> list[Any]:
        """Single (non-recurring) events overlapping [start, end), as recurring-ical-events
        would select them; they need no expansion, which is most of its cost."""
        chosen = []
        for event in events:
            try:
                starts, ends, _ = _span(event, floating)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                self.problem(f"event {event.get('UID') or '?'}",
                             f"unusable DTSTART/DTEND/DURATION ({exc}); skipped")
                continue
            last = ends if ends is not None and ends > starts else starts
            if starts < end and (last > start or starts >= start):
                chosen.append(event)
        return chosen

    def _check_series(self, series: Any, floating: tzinfo) -> None:
        """Report series the expander will skip (skip_bad_series) for an unusable start:
        unreported, their occurrences would look gone and be deleted."""
        for event in series.walk("VEVENT"):
            try:
                _span(event, floating)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                self.problem(f"event {event.get('UID') or '?'}",
                             f"unusable DTSTART/DTEND/DURATION ({exc}); skipped")

    def _excluded(self, calendar: Any, start: datetime, end: datetime, floating: tzinfo,
                  base: str) -> Iterator[Item]:
        """Occurrences a series removed with EXDATE, within the window, as cancelled items."""
        for master in calendar.walk("VEVENT"):
            if "EXDATE" not in master or "RRULE" not in master or "RECURRENCE-ID" in master:
                continue
            try:
                duration = _duration(master)
            except (KeyError, ValueError, TypeError, AttributeError):
                continue  # an unusable start: reported by _check_series
            all_day = not isinstance(master["DTSTART"].dt, datetime)
            for moment in (d.dt for lst in all_of(master, "EXDATE") for d in lst.dts):
                moment = _day_if_midnight(moment, all_day)
                begins = _utc(moment, floating)
                if not start <= begins < end:
                    continue
                copy = master.copy()
                for key in ("DTSTART", "DTEND", "DURATION", "RRULE", "EXDATE"):
                    copy.pop(key, None)
                copy.add("DTSTART", moment)
                copy.add("DTEND", moment + duration)
                copy.add("RECURRENCE-ID", moment)
                copy["STATUS"] = "CANCELLED"
                item = self._item(copy, {str(master.get("UID"))}, floating, base)
                if item is not None:
                    yield item


def give_missing_uids(calendar: Any) -> list[str]:
    """Give each event without UID one derived from its DTSTART (as written, TZID and all)
    and SUMMARY; returns the SUMMARY of each event taken out as another's twin.

    RFC 5545 requires a UID, but Outlook Web exports have none. The derived id is the same
    on every fetch of an unchanged event, so it is offered once, as with a real UID. An
    edit of its start or title makes it another event: the old id is gone from the window
    (deleted, not shown as called off) and the edited event is offered as new.
    """
    taken: set[str] = set()
    twins, kept = [], []
    for component in calendar.subcomponents:
        if component.name == "VEVENT" and not str(component.get("UID") or "").strip():
            start, title = _raw_start(component), str(component.get("SUMMARY") or "").strip()
            if start and title:
                digest = hashlib.sha256(f"{start}\n{title}".encode()).hexdigest()[:24]
                uid = f"no-uid-{digest}"
                if uid in taken:
                    twins.append(title)
                    continue
                taken.add(uid)
                component["UID"] = uid
        kept.append(component)
    if twins:
        calendar.subcomponents[:] = kept
    return twins


def _raw_start(event: Any) -> str:
    """DTSTART as the calendar wrote it, with its TZID: 'TZID=...:20201028T133000'."""
    prop = event.get("DTSTART")
    if prop is None:
        return ""
    tzid = prop.params.get("TZID")
    try:
        value = prop.to_ical().decode()
    except Exception:  # noqa: BLE001 - a broken property: no start to name
        return ""
    return f"TZID={tzid}:{value}" if tzid else value


def parse_calendar(doc: Document) -> tuple[Any, str | None]:
    """Parse a fetched document as iCalendar, or raise ContentError saying why it is not.

    Some producers (The Events Calendar among them) write broken VTIMEZONE blocks; when
    only those stop the parser, the calendar is read without them (named TZIDs still
    resolve through the zone database) and a note says so. Alarms are never read, so a
    broken one (NS International writes TRIGGER:PT-2H) is dropped without a note.
    """
    text = doc.content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text[:15].upper().startswith(b"BEGIN:VCALENDAR"):
        if b"<html" in text[:2048].lower():
            raise ContentError(doc.url, "not an iCalendar file (no BEGIN:VCALENDAR; got an "
                                        "HTML page)", Failure.HTML_PAGE, expected="calendar")
        raise ContentError(doc.url, "not an iCalendar file (no BEGIN:VCALENDAR; got something "
                                    "else)", Failure.NOT_A_CALENDAR)
    if b"END:VCALENDAR" not in text[-512:].upper():
        raise ContentError(doc.url, "iCalendar file is truncated (no END:VCALENDAR at the end)",
                           Failure.TRUNCATED_CALENDAR)
    try:
        return calendar_from_ical(text), None
    except Exception as exc:  # noqa: BLE001 - a third-party parser on untrusted input
        reason = f"malformed iCalendar: {type(exc).__name__}: {exc}"
        parser = str(exc)
    without_alarms = VALARM.sub(b"", text)
    if without_alarms != text:
        try:
            return calendar_from_ical(without_alarms), None
        except Exception:  # noqa: BLE001, S110 - try without the VTIMEZONEs too
            pass
        text = without_alarms
    without = VTIMEZONE.sub(b"", text)
    if without != text:
        try:
            return calendar_from_ical(without), f"{reason}; read without its VTIMEZONEs"
        except Exception:  # noqa: BLE001, S110 - report the first reason below
            pass
    raise ContentError(doc.url, reason, Failure.INVALID_CALENDAR, parser=parser)


def _span(event: Any, floating: tzinfo) -> tuple[datetime, datetime | None, bool]:
    """Start, end (exclusive) and all-day flag, as aware UTC."""
    raw_start = event["DTSTART"].dt
    all_day = isinstance(raw_start, date) and not isinstance(raw_start, datetime)
    raw_end = event["DTEND"].dt if "DTEND" in event else None
    if raw_end is None and "DURATION" in event:
        raw_end = raw_start + event["DURATION"].dt
    if raw_end is None and all_day:
        raw_end = raw_start + timedelta(days=1)
    starts = _utc(raw_start, floating)
    ends = _utc(raw_end, floating) if raw_end is not None else None
    if ends is not None and ends < starts:
        raise ValueError("ends before it starts")
    return starts, ends, all_day


def _utc(value: date | datetime, floating: tzinfo) -> datetime:
    """A DATE is local midnight (Amsterdam); a floating time is in the calendar's zone."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0, 0), AMSTERDAM).astimezone(UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=floating)
    return value.astimezone(UTC)


def _day_if_midnight(value: date | datetime, all_day: bool) -> date | datetime:
    """An all-day occurrence's original start as a day. Exchange writes the RECURRENCE-ID
    and EXDATE of an all-day series as midnight in its zone ("RECURRENCE-ID;TZID=GMT
    Standard Time:20200416T000000") where the series' own occurrences are dates; read as
    an instant, a moved occurrence would get another id and look like a new event."""
    if all_day and isinstance(value, datetime) and value.time() == time(0):
        return value.date()
    return value


def _stamp(value: date | datetime, floating: tzinfo) -> str:
    if not isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    return _utc(value, floating).strftime("%Y%m%dT%H%M%SZ")


def _duration(master: Any) -> timedelta:
    start = master["DTSTART"].dt
    if "DTEND" in master:
        return master["DTEND"].dt - start
    if "DURATION" in master:
        return master["DURATION"].dt
    return timedelta(days=1) if not isinstance(start, datetime) else timedelta(0)


def _split(calendar: Any, recurring: set[str]) -> tuple[list[Any], Any]:
    """Single events, and a calendar with everything else (series, time zones) to expand."""
    singles, series = [], icalendar.Calendar()
    for key, value in calendar.items():
        series[key] = value
    for component in calendar.subcomponents:
        if component.name == "VEVENT" and str(component.get("UID")) not in recurring:
            singles.append(component)
        else:
            series.add_component(component)
    return singles, series


def _recurring_uids(calendar: Any) -> set[str]:
    """UIDs of series: a master with RRULE/RDATE, or any component with RECURRENCE-ID."""
    return {str(c.get("UID")) for c in calendar.walk("VEVENT")
            if "RRULE" in c or "RDATE" in c or "RECURRENCE-ID" in c}


def _events(count: int) -> str:
    return f"{count} event{'s' if count != 1 else ''}"


def _floating_zone(calendar: Any) -> tzinfo:
    """Floating times are in the calendar's X-WR-TIMEZONE, else Europe/Amsterdam (an
    unknown X-WR-TIMEZONE was taken out, with the events that needed it, by _repair)."""
    name = str(calendar.get("X-WR-TIMEZONE") or "").strip()
    return (zone_for_tzid(name) if name else None) or AMSTERDAM


def _categories(event: Any) -> list[str]:
    return [str(c) for v in all_of(event, "CATEGORIES") for c in getattr(v, "cats", [v])]


def _description(event: Any, max_chars: int, base: str) -> str:
    """The description as safe HTML: HTML ones sanitised, plain text in paragraphs where it
    has blank lines; without a last line that only repeats the event's own link (base),
    which the mail links."""
    text = str(event.get("DESCRIPTION") or "").strip()
    if not text:
        return ""
    if HTML_TAG.search(text):
        return summarize(text, max_chars, base, base)
    if "&" in text:
        text = html.unescape(text)
    text = drop_shortcodes(text)  # The Events Calendar's export keeps unrendered ones
    lines = [" ".join(line.split()) for line in text.split("\n")]
    paragraphs = _paragraphs(drop_own_link_lines(lines, base))
    if paragraphs:
        paragraphs[0] = plain_without_leading_debris(paragraphs[0])
    # fit_summary cuts them as it cuts HTML: one paragraph, a full stop where one lacks it.
    return fit_summary("".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p),
                       max_chars)


def _paragraphs(lines: list[str]) -> list[str]:
    """Plain-text lines (already stripped) as paragraphs: a blank line separates them, a
    single line break is a space."""
    paragraphs, current = [], []
    for line in [*lines, ""]:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs
