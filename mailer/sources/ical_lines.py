"""icalendar's parser, with content lines that split the common line without a Python loop.

icalendar finds a line's name, parameters and value by looking at every character of the
line in Python, the value included: about a third of parsing a calendar. Most lines have
no parameters (`SUMMARY:...`, `DESCRIPTION:...`); for those the split is the first colon,
found with str.find. Everything else goes to icalendar's own code, and any failure re-parses
the text the ordinary way, so results and error messages are icalendar's (tests compare
both on every calendar in the fixtures). Parsing a list of content lines needs icalendar 7,
the lower bound in pyproject.toml.
"""

from __future__ import annotations

import re

import icalendar
from icalendar.parser import Contentline, Contentlines, Parameters, validate_token

SPACES = re.compile(r"[ \t]+")


class QuickLine(Contentline):
    """A content line that splits `NAME:value` itself and leaves the rest to icalendar."""

    __slots__ = ()

    def raw_parts(self) -> tuple[str, Parameters, str]:
        """Name, parameters and raw value, as Contentline.raw_parts gives them."""
        colon = self.find(":")
        if colon <= 0 or self.strict:
            return super().raw_parts()
        name = self[:colon]
        # Quotes, backslashes or parameters before the colon: icalendar's character scan
        # decides where the name and the value are.
        if ";" in name or '"' in name or "\\" in name:
            return super().raw_parts()
        name = SPACES.sub("", name.strip())  # what icalendar does when not strict
        try:
            validate_token(name)
        except ValueError:
            return super().raw_parts()  # raises with icalendar's message
        return name, Parameters(), self[colon + 1:]


def calendar_from_ical(text: bytes) -> icalendar.Calendar:
    """Parse one VCALENDAR like icalendar.Calendar.from_ical, faster on plain lines."""
    try:
        lines = [QuickLine(line) for line in Contentlines.from_ical(text)]
        return icalendar.Calendar.from_ical(lines)
    except Exception:  # noqa: BLE001 - icalendar's own parse gives the result or the error
        return icalendar.Calendar.from_ical(text)
