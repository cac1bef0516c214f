"""The Events Calendar's REST API (`/wp-json/tribe/events/v1/events`), all pages.

We ask for events starting from today up to the horizon; within that span the listing is
complete, so an event missing from it was deleted or unpublished. An event whose status
(Event Status: canceled) says it is called off becomes a cancelled item; a password-protected
event is not offered, like a protected post.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from mailer.clock import AMSTERDAM, local
from mailer.models import Item, ItemKind, ItemStatus
from mailer.sanitize import html_to_text
from mailer.sources import Window, register
from mailer.sources.remote import is_online, summarize
from mailer.sources.wordpress import PagedSource, parse_wp_time, term_names

EVENTS_PATH = "/wp-json/tribe/events/v1/events"
STATUS_KEYS = ("event_status", "tribe_events_status", "_tribe_events_status")
CANCELLED = {"canceled", "cancelled"}
# Flags the API always sends as true/false, and as null for a password-protected event whose
# fields it hides (the plugin's REST snapshot Archive_EventTest "it should hide password
# protected fields"); the title and times stay, the event's page asks for the password.
HIDDEN_WHEN_PROTECTED = ("all_day", "show_map", "show_map_link", "hide_from_listings",
                         "sticky", "featured")


@register
class WordPressEventsSource(PagedSource):
    """Events of a WordPress site with The Events Calendar: `location` is the site or endpoint."""

    kind: ClassVar[str] = "wordpress-events"
    options: ClassVar[frozenset[str]] = PagedSource.options | {"event_type", "horizon_weeks",
                                                                "categories"}
    path: ClassVar[str] = EVENTS_PATH
    max_per_page: ClassVar[int] = 50

    def fetch(self) -> list[Item]:
        """Read every page of events from today to the horizon."""
        self.problems, self.warnings = [], []
        first_day = local(self.clock.now()).date()
        weeks = self.option("horizon_weeks")
        horizon = timedelta(weeks=int(weeks)) if weeks else self.horizon
        last_day = local(self.clock.now() + horizon).date()
        params = {"start_date": f"{first_day} 00:00:00", "end_date": f"{last_day} 23:59:59"}
        if self.option("categories"):
            params["categories"] = str(self.option("categories"))
        items: dict[str, Item] = {}
        for records in self.pages(params, list_key="events"):
            for event in records:
                item = self._item(event)
                if item is not None:
                    items.setdefault(item.source_id, item)
        # Only the days fully inside the asked span are proven complete.
        self.window = Window("starts_at", _midnight(first_day), _midnight(last_day))
        return list(items.values())

    def _item(self, event: Any) -> Item | None:
        if not isinstance(event, dict) or "id" not in event:
            self.problem("event ?", "not an event object; skipped")
            return None
        where = f"event {event['id']}"
        if is_password_protected(event):
            self.note(where, "password-protected event; not offered")  # a password form
            return None
        title = html_to_text(str(event.get("title") or ""), one_line=True)
        link = self.link(event.get("url"), self.endpoint())
        all_day = bool(event.get("all_day"))
        try:
            starts, ends = _span(event, all_day)
        except ValueError as exc:
            self.problem(where, str(exc))
            return None
        if not title or not link:
            self.problem(where, "event without title or url; skipped")
            return None
        location = _venue(event.get("venue"))
        tags = term_names([event.get("categories"), event.get("tags")])
        image = event.get("image") if isinstance(event.get("image"), dict) else {}
        status = next((str(event[k]).lower() for k in STATUS_KEYS if event.get(k)), "")
        return Item(
            source=self.name, source_id=str(event["id"]), kind=ItemKind.EVENT, title=title,
            url=link, summary=summarize(str(event.get("excerpt") or event.get("description")
                                            or ""), self.summary_chars(), link, link),
            starts_at=starts, ends_at=ends, all_day=all_day, location=location,
            online=is_online(location) or bool(event.get("is_virtual")),
            event_type=self.event_type_for(tags), topics=self.topics_for(tags),
            image_url=image.get("url") or None,
            image_alt=(image.get("alt") or title) if image.get("url") else None,
            status=ItemStatus.CANCELLED if status in CANCELLED else ItemStatus.ACTIVE,
        )


def is_password_protected(event: dict) -> bool:
    """Whether the API hid this event's fields behind its password: every flag null."""
    flags = [key for key in HIDDEN_WHEN_PROTECTED if key in event]
    return len(flags) >= 3 and all(event[key] is None for key in flags)


def _span(event: dict, all_day: bool) -> tuple[datetime, datetime | None]:
    """Start and end as aware UTC; all-day events run from local midnight to midnight."""
    if all_day:
        first = _local_date(event.get("start_date"))
        last = _local_date(event.get("end_date")) or first
        if first is None:
            raise ValueError("all-day event without start_date; skipped")
        return _midnight(first), _midnight((last or first) + timedelta(days=1))
    starts = parse_wp_time(event.get("utc_start_date"))
    ends = parse_wp_time(event.get("utc_end_date"))
    if starts is None:
        raise ValueError("event without utc_start_date; skipped")
    if ends is not None and ends < starts:
        raise ValueError("event ends before it starts; skipped")
    return starts, ends


def _local_date(value: Any) -> date | None:
    try:
        return datetime.fromisoformat(str(value).replace(" ", "T")).date() if value else None
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), AMSTERDAM).astimezone(UTC)


def _venue(venue: Any) -> str | None:
    """'Venue, City' from the venue object (an empty list when there is none)."""
    if not isinstance(venue, dict):
        return None
    parts = [html_to_text(str(venue.get(k) or ""), one_line=True) for k in ("venue", "city")]
    return ", ".join(dict.fromkeys(p for p in parts if p)) or None
