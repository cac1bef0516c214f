"""Times whose TZID icalendar could not resolve: placed in their zone, or reported.

icalendar resolves a TZID through the calendar's VTIMEZONE blocks, IANA names and Windows
zone ids; anything else it leaves as a time without zone, which would read as floating
(Amsterdam) time, hours off for `(UTC-05:00) Eastern Time (US & Canada)`. Such times get
the zone `windows_zones` finds for the name; an event whose zone nobody knows is taken
out, so it is reported instead of shown at a guessed time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailer.sources.windows_zones import zone_for_tzid

SINGLE = ("DTSTART", "DTEND", "RECURRENCE-ID")
LISTS = ("EXDATE", "RDATE")


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
        props = event.get(key)
        props = props if isinstance(props, list) else [props] if props is not None else []
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
