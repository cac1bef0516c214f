"""Content sources: one module per kind, each yielding Items; registered by kind.

Adding a kind is one new module that defines a class with `kind` and decorates it with
`@register`; `content/sources.toml` then names it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from mailer.models import Item


class Source(Protocol):
    """Something that yields the current content items of one configured source."""

    kind: ClassVar[str]

    def fetch(self) -> Iterable[Item]: ...


@dataclass(frozen=True)
class SourceConfig:
    """One configured source: its name, kind, location and options."""

    name: str
    kind: str
    location: str
    item_kind: str = "magazine"  # what its items are: magazine or event
    topics: dict[str, str] = field(default_factory=dict)  # source tag -> our topic
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """The part of a source one fetch saw in full: items missing inside it are gone.

    `column` is the item field the window is on (published_at or starts_at); rows of this
    source whose value lies in [start, end) and that the fetch did not return are deleted.
    """

    column: str
    start: datetime
    end: datetime | None = None


SourceFactory = Callable[..., Source]
_REGISTRY: dict[str, SourceFactory] = {}


def register(cls: type) -> type:
    """Class decorator: make a source kind available by its `kind` name."""
    _REGISTRY[cls.kind] = cls
    return cls


def source_kinds() -> list[str]:
    """Names of every registered source kind."""
    _load_builtin_kinds()
    return sorted(_REGISTRY)


def factory_for(kind: str) -> SourceFactory:
    """The class that implements a source kind; KeyError names the known kinds."""
    _load_builtin_kinds()
    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown source kind {kind!r}; known: {known}") from None


def _load_builtin_kinds() -> None:
    # Importing the modules runs their @register decorators.
    from mailer.sources import feed, ical, markdown, wordpress, wordpress_events  # noqa: F401
