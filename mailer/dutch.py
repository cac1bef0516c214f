"""Dutch dates and times (Taalunie style), from fixed tables so output never drifts with CLDR.

Everything is shown in Europe/Amsterdam: callers pass aware datetimes and get local text.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from mailer.clock import local

WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
MONTHS = (
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
)
# "mei", "juni" and "juli" are not shortened in running Dutch text.
MONTHS_SHORT = (
    "jan", "feb", "mrt", "apr", "mei", "juni", "juli", "aug", "sep", "okt", "nov", "dec",
)


def long_date(day: date | datetime) -> str:
    """'donderdag 3 december 2026' (a datetime is first taken to Amsterdam time)."""
    d = local(day).date() if isinstance(day, datetime) else day
    return f"{WEEKDAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]} {d.year}"


def short_date(day: date | datetime) -> str:
    """'3 dec 2026'."""
    d = local(day).date() if isinstance(day, datetime) else day
    return f"{d.day} {MONTHS_SHORT[d.month - 1]} {d.year}"


def clock_time(moment: datetime) -> str:
    """'14.30' in Amsterdam time."""
    t = local(moment)
    return f"{t.hour}.{t.minute:02d}"


def time_of_day(moment: datetime) -> str:
    """'14.30 uur'."""
    return f"{clock_time(moment)} uur"


def event_when(starts: datetime, ends: datetime | None, all_day: bool = False) -> str:
    """When an event takes place, e.g. 'donderdag 10 december 2026, 13.30–16.30 uur'."""
    if all_day:
        return _all_day_when(local(starts).date(), local(ends).date() if ends else None)
    first = long_date(starts)
    if ends is None or ends <= starts:
        return f"{first}, {time_of_day(starts)}"
    if local(ends).date() == local(starts).date():
        return f"{first}, {clock_time(starts)}–{clock_time(ends)} uur"
    if local(ends) == _next_midnight(starts):
        return f"{first}, {clock_time(starts)}–24.00 uur"  # the day's end, not 0.00 the next
    return f"{first}, {time_of_day(starts)} t/m {long_date(ends)}, {time_of_day(ends)}"


def _next_midnight(moment: datetime) -> datetime:
    """The local midnight that ends the Amsterdam day of an instant."""
    day = local(moment).date() + timedelta(days=1)
    return datetime.combine(day, time(0, 0), local(moment).tzinfo)


def _all_day_when(first: date, end: date | None) -> str:
    # All-day ends are exclusive, as in iCalendar: a one-day event ends the next midnight.
    if end is None or end <= first + timedelta(days=1):
        return f"{long_date(first)}, hele dag"
    return f"{long_date(first)} t/m {long_date(end - timedelta(days=1))}"
