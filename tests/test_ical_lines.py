"""The quick content lines parse every calendar exactly as icalendar's own parser does."""


import icalendar
import pytest
from icalendar.parser import Contentline, Contentlines

from mailer.sources.ical_lines import QuickLine, calendar_from_ical
from tests.source_helpers import CORPORA, SOURCES

TRICKY_LINES = [
    "SUMMARY:Training: signalen herkennen", "summary:lower case name", " SUMMARY :spaces",
    "X-WR-CALNAME;VALUE=TEXT:Agenda", 'ATTENDEE;CN="Jan: de Vries";ROLE=CHAIR:mailto:j@x.nl',
    "DESCRIPTION:back\\\\slash\\, comma\\; semi\\nline", "LOCATION:Jaarbeurs\\, Utrecht",
    ":no name", "NO-COLON", "BAD NAME:x", "BAD_NAME:x", 'QUOTE"D:x', "NAME\\:x:y", "URL:",
    "X-EMPTY;:value", "DTSTART;TZID=Europe/Amsterdam:20261204T100000", "A:b:c;d=e",
    "CATEGORIES:Training,Werkatelier\\,Extra", "RRULE:FREQ=WEEKLY;COUNT=5",
]


def calendars() -> list[tuple[str, bytes]]:
    # The corpus copies in the repository (those whose licence allows it), so every clone
    # runs the same cases.
    paths = [*sorted((CORPORA / "ical").glob("*.ics")), *sorted(SOURCES.glob("*.ics"))]
    found = [(p.name, p.read_bytes()) for p in paths]
    body = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "BEGIN:VEVENT", "UID:u@x",
                        *TRICKY_LINES, "END:VEVENT", "END:VCALENDAR"]).encode()
    found += [("tricky", body), ("two calendars", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n" * 2),
              ("no calendar", b"SUMMARY:x\r\n"), ("END without BEGIN", b"END:VEVENT\r\n")]
    return found


def outcome(parse, text: bytes):
    try:
        calendar = parse(text)
    except Exception as exc:  # noqa: BLE001 - the error itself is compared
        return type(exc), str(exc)
    return calendar, calendar.to_ical()


@pytest.mark.parametrize(("name", "text"),
                         [pytest.param(name, text, id=name) for name, text in calendars()])
def test_calendar_equals_icalendars_own_parse(name, text):
    expected, quick = outcome(icalendar.Calendar.from_ical, text), outcome(calendar_from_ical,
                                                                           text)
    assert quick == expected, name


def test_every_line_splits_as_icalendar_splits_it():
    lines = [line for _, text in calendars() for line in Contentlines.from_ical(text) if line]
    lines += TRICKY_LINES
    assert len(lines) > 500  # the corpus is really exercised
    for line in lines:
        assert split(QuickLine(line)) == split(Contentline(line)), line


def split(line: Contentline):
    try:
        name, params, value = line.raw_parts()
    except ValueError as exc:
        return str(exc)
    return name, type(params), dict(params), value


def test_calendar_from_ical_parses_quick_lines_without_falling_back(monkeypatch):
    # The fallback re-parses the bytes; the quick path hands icalendar a list of lines.
    # Equal results alone would not show the quick path runs at all.
    parsed = []
    original = icalendar.Calendar.from_ical

    def spy(cls, st, *args, **kwargs):
        parsed.append(type(st))
        return original(st, *args, **kwargs)

    monkeypatch.setattr(icalendar.Calendar, "from_ical", classmethod(spy))
    text = (SOURCES / "agenda.ics").read_bytes()
    calendar = calendar_from_ical(text)
    assert parsed == [list]
    assert calendar.to_ical() == original(text).to_ical()
