"""The one source of "now": everything that asks the time gets it from a Clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


class Clock(Protocol):
    """Tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock stopped at one instant, for replaying a date (MAILER_NOW) and for tests."""

    instant: datetime

    def now(self) -> datetime:
        return self.instant


def parse_instant(text: str) -> datetime:
    """Parse ISO 8601; a value without offset is Amsterdam local time. Returns UTC."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=AMSTERDAM)
    return value.astimezone(UTC)


def local(moment: datetime) -> datetime:
    """Show an aware instant in Europe/Amsterdam."""
    return moment.astimezone(AMSTERDAM)


def clock_for(now_setting: str | None) -> Clock:
    """The clock the settings ask for: fixed at MAILER_NOW if given, else the system clock."""
    return FixedClock(parse_instant(now_setting)) if now_setting else SystemClock()
