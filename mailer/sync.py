"""Syncing sources into the item ledger, one transaction per source."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from mailer.clock import Clock
from mailer.errors import ContentError, MailerError
from mailer.sources import Source
from mailer.store.items import upsert_items

log = logging.getLogger(__name__)


@dataclass
class SourceReport:
    """What syncing one source did, or why it failed."""

    name: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    problems: list[str] = field(default_factory=list)  # per-entry problems; source still synced
    error: str | None = None  # the whole source failed; nothing of it was committed

    @property
    def ok(self) -> bool:
        return self.error is None


def sync_source(engine: Engine, name: str, source: Source, clock: Clock) -> SourceReport:
    """Fetch one source and upsert its items; a failure rolls back this source only."""
    report = SourceReport(name=name)
    try:
        fetched = list(source.fetch())
        # Only a clean, complete read proves that a missing item is gone: a file with a
        # typo must not make its article disappear.
        complete = getattr(source, "complete", True) and not getattr(source, "problems", [])
        with engine.begin() as conn:
            counts = upsert_items(conn, name, fetched, clock.now(), complete=complete)
    except (MailerError, OSError, ValueError) as exc:
        report.error = str(exc) if isinstance(exc, ContentError) else f"{type(exc).__name__}: {exc}"
        log.warning("source %s failed: %s", name, report.error)
        return report
    report.fetched = len(fetched)
    report.new, report.updated, report.deleted = counts.new, counts.updated, counts.deleted
    report.problems = [str(p) for p in getattr(source, "problems", [])]
    for problem in report.problems:
        log.warning("source %s: %s", name, problem)
    return report
