"""Times whose TZID icalendar could not resolve: placed in their zone, or reported.

icalendar resolves a TZID through the calendar's VTIMEZONE blocks, IANA names and Windows
zone ids; anything else it leaves as a time without zone, which would read as floating
(Amsterdam) time, hours off for `(UTC-05:00) Eastern Time (US & Canada)`. Such times get
the zone `windows_zones` finds for the name; an event whose zone nobody knows is taken
out, so it is reported instead of shown at a guessed time.

X-WR-TIMEZONE, the calendar-wide zone Google, Apple and Outlook exports write for floating
times, goes through the same table: Outlook writes Windows names there too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailer.sources.windows_zones import zone_for_tzid

SINGLE = ("DTSTART", "DTEND", "RECURRENCE-ID")
LISTS = ("EXDATE", "RDATE")
CALENDAR_ZONE = "X-WR-TIMEZONE"


def place_calendar_zone(calendar: Any) -> tuple[str, int] | None:
    """Resolve X-WR-TIMEZONE like a TZID; when nobody knows the zone, take out the events
    that need it and return (its name, how many were taken out).

    A known zone is written back by its IANA name: recurring-ical-events reads the property
    itself (through x-wr-timezone, IANA names only) to place floating times and to repeat a
    UTC series at the same local time. An unknown one is removed, with the events whose
    times depend on it, so nothing is read as Amsterdam time by default."""
    name = str(calendar.get(CALENDAR_ZONE) or "").strip()
    if not name:
        return None
    zone = zone_for_tzid(name)
    calendar.pop(CALENDAR_ZONE)
    if zone is not None:
        calendar.add(CALENDAR_ZONE, getattr(zone, "key", name))
        return None
    kept = [c for c in calendar.subcomponents
            if c.name != "VEVENT" or not _needs_calendar_zone(c)]
    taken_out = len(calendar.subcomponents) - len(kept)
    calendar.subcomponents[:] = kept
    return name, taken_out


def _needs_calendar_zone(event: Any) -> bool:
    """Whether an event has floating times, or is a series repeating a UTC start (the
    expander repeats it at the same local time of the calendar's zone, across DST)."""
    try:
        values = [event[key].dt for key in SINGLE if key in event]
        values += [d.dt for key in LISTS for prop in all_of(event, key) for d in prop.dts]
        start = event["DTSTART"].dt if "DTSTART" in event else None
    except Exception:  # noqa: BLE001 - a broken property: ical.py reports it as unusable
        return False
    return any(_naive(value) for value in values) or ("RRULE" in event and _utc(start))


def _utc(value: Any) -> bool:
    """Whether a time is in UTC, the way x-wr-timezone tells (by the zone's name)."""
    return isinstance(value, datetime) and (value.tzname() or "").upper() == "UTC"


def place_named_zones(calendar: Any) -> dict[str, int]:
    """Give unresolved TZID times their zone; take out the events whose zone is unknown.

    Returns each unknown TZID with the number of events taken out for it."""
    unknown: dict[str, int] = {}
    kept = []
    for component in calendar.subcomponents:
        tzid = _place(component) if component.name == "VEVENT" else None
        if tzid is None:
            kept.append(component)
        else:
            unknown[tzid] = unknown.get(tzid, 0) + 1
    if unknown:
        calendar.subcomponents[:] = kept
    return unknown


def _place(event: Any) -> str | None:
    """Place the event's zone-less TZID times; the first unknown TZID, else None."""
    for key in SINGLE:
        prop = event.get(key)
        tzid, value = _unplaced(prop)
        if tzid is None:
            continue
        zone = zone_for_tzid(tzid)
        if zone is None:
            return tzid
        event.pop(key)
        event.add(key, value.replace(tzinfo=zone))
    for key in LISTS:
        props = all_of(event, key)
        if not any(_unplaced_list(p) for p in props):
            continue
        event.pop(key)
        for prop in props:
            tzid = _unplaced_list(prop)
            zone = zone_for_tzid(tzid) if tzid else None
            if tzid and zone is None:
                return tzid
            dts = [d.dt for d in prop.dts]
            event.add(key, [d.replace(tzinfo=zone) if zone and _naive(d) else d for d in dts])
    return None


def all_of(component: Any, key: str) -> list[Any]:
    """A component's properties of a kind that may repeat (EXDATE, RDATE, CATEGORIES) as a
    list: icalendar gives one property alone, several as a list."""
    props = component.get(key)
    return props if isinstance(props, list) else [] if props is None else [props]


def _unplaced(prop: Any) -> tuple[str | None, Any]:
    """(TZID, time) of a property holding a zone-less time with a TZID, else (None, None)."""
    tzid = getattr(prop, "params", {}).get("TZID") if prop is not None else None
    if not tzid:
        return None, None
    try:
        value = prop.dt
    except Exception:  # noqa: BLE001 - a broken property: ical.py reports it as unusable
        return None, None
    return (str(tzid), value) if _naive(value) else (None, None)


def _unplaced_list(prop: Any) -> str | None:
    """The TZID of an EXDATE/RDATE list with zone-less times, else None."""
    tzid = getattr(prop, "params", {}).get("TZID")
    try:
        return str(tzid) if tzid and any(_naive(d.dt) for d in prop.dts) else None
    except Exception:  # noqa: BLE001 - a broken property is left as it is
        return None


def _naive(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is None
