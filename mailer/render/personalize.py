"""Per-recipient values filled into a rendered body cheaply: no parsing, just joining.

A rendered segment carries markers like `%%unsubscribe_url%%`. `PersonalTemplate` splits
the body once at its markers; filling it for a recipient is a list join, so the cost per
recipient is copying bytes, whatever the template size.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MARKER = re.compile(r"%%([a-z_]+)%%")
PERSONAL_KEYS = ("greeting", "unsubscribe_url", "preferences_url")


def marker(key: str) -> str:
    """The marker text that stands for a personal value in a rendered body."""
    return f"%%{key}%%"


@dataclass(frozen=True)
class PersonalTemplate:
    """A body split at its markers: literal parts alternating with value keys."""

    parts: tuple[str, ...]  # len(keys) + 1 literal chunks
    keys: tuple[str, ...]
    escape_html: bool

    @classmethod
    def parse(cls, body: str, *, escape_html: bool) -> PersonalTemplate:
        """Split a body at its markers, once."""
        pieces = MARKER.split(body)
        return cls(tuple(pieces[0::2]), tuple(pieces[1::2]), escape_html)

    def fill(self, values: Mapping[str, str]) -> str:
        """The body for one recipient; a missing value is a KeyError, never a silent gap."""
        out = [self.parts[0]]
        for key, literal in zip(self.keys, self.parts[1:], strict=True):
            value = values[key]
            out.append(html.escape(value) if self.escape_html else value)
            out.append(literal)
        return "".join(out)

    def with_syntax(self, placeholder: Callable[[str], str]) -> str:
        """The body with each marker written in a provider's own substitution syntax."""
        out = [self.parts[0]]
        for key, literal in zip(self.keys, self.parts[1:], strict=True):
            out.append(placeholder(key))
            out.append(literal)
        return "".join(out)


def greeting(name: str) -> str:
    """'Beste Anna,' from the first word of a name, or 'Beste lezer,'."""
    words = name.split(maxsplit=1) if name else None  # called per recipient: split once
    return f"Beste {words[0]}," if words else "Beste lezer,"
