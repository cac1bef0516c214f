"""Syncing sources into the item ledger, one transaction per source."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError, StatementError

from mailer.clock import Clock
from mailer.errors import ContentError, MailerError
from mailer.models import Item
from mailer.sources import Source
from mailer.sources.failures import database_reason, editor_reason
from mailer.sources.http import FetchError, Validators
from mailer.store.db import driver_reason
from mailer.store.items import UpsertCounts, upsert_items
from mailer.store.source_state import load_validators, record_failure, record_success

log = logging.getLogger(__name__)
# 2: summaries keep words apart and punctuation next to them; avatars/share buttons no image
# 3: summaries lose empty links, "read more" boilerplate and tracking parameters
# 4: duplicates are compared keeping ref* and mc_* parameters (stored canonical URLs renew);
#    a cut summary puts a full stop between paragraphs that lacked one
# 5: event descriptions lose a last line that only repeats the event's own link
#    summaries lose white space and stray separators before their first word
#    password-protected events of The Events Calendar are not offered
#    shortcodes a WordPress site left unrendered ([vc_row], [caption]) are dropped
#    a featured image whose alt_text is its file name gets the title as alt text
# 6: plain-text iCalendar descriptions keep their paragraphs (blank lines)
#    a moved or excluded all-day occurrence Exchange dates at midnight keeps its day's id
PARSING_VERSION = 6  # raise when a change in the sources' parsing should re-read everything


@dataclass
class SourceReport:
    """What syncing one source did, or why it failed."""

    name: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    deleted: int = 0
    duplicates: int = 0
    not_modified: bool = False  # the server answered 304: nothing new since last time
    problems: list[str] = field(default_factory=list)  # per-entry problems; source still synced
    warnings: list[str] = field(default_factory=list)  # e.g. an unknown field; the entry synced
    error: str | None = None  # the whole source failed, why in Dutch; nothing was committed
    detail: str | None = None  # the same for operators: the technical line, URL fetched

    @property
    def ok(self) -> bool:
        return self.error is None


def sync_source(engine: Engine, name: str, source: Source, clock: Clock) -> SourceReport:
    """Fetch one source and upsert its items; a failure rolls back this source only."""
    report = SourceReport(name=name)
    fingerprint = config_fingerprint(source)
    if hasattr(source, "validators"):
        with engine.connect() as conn:
            source.validators = Validators(*load_validators(conn, name, fingerprint))
    try:
        fetched = list(source.fetch())
        with engine.begin() as conn:
            if getattr(source, "not_modified", False):
                report.not_modified = True
            else:
                _apply(conn, name, source, fetched, clock, report)
            validators = getattr(source, "validators", None) or Validators()
            record_success(conn, name, clock.now(), validators.etag, validators.last_modified,
                           fingerprint)
    except (OperationalError, ProgrammingError):
        # The database failed (no schema, unreachable), not the source: every other source
        # would fail the same way, and the caller says what to do in one line.
        raise
    except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
        report.error, report.detail = reason(exc, source), describe(exc)
        # A database error's text holds the statement and its parameters: debug log only.
        log.warning("source %s failed: %s", name, report.detail,
                    exc_info=not isinstance(exc, MailerError | OSError | ValueError
                                            | StatementError))
        if isinstance(exc, StatementError):
            log.debug("source %s failed in the database", name, exc_info=True)
        with engine.begin() as conn:
            record_failure(conn, name, clock.now(), report.detail)
        return report
    for problem in [*report.problems, *report.warnings]:
        log.warning("source %s: %s", name, problem)
    return report


def preview_source(engine: Engine, name: str, source: Source,
                   clock: Clock) -> tuple[list[Item], SourceReport]:
    """Fetch and parse a source and count what syncing would do, storing nothing."""
    report = SourceReport(name=name)
    try:
        fetched = list(source.fetch())
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                _apply(conn, name, source, fetched, clock, report)
            finally:
                transaction.rollback()
    except (OperationalError, ProgrammingError):
        raise  # the database failed, not the source (as in sync_source)
    except Exception as exc:  # noqa: BLE001 - report it like sync does
        report.error, report.detail = reason(exc, source), describe(exc)
        log.info("source %s failed: %s", name, report.detail)
        return [], report
    return fetched, report


def _apply(conn: Connection, name: str, source: Source, fetched: list[Item], clock: Clock,
           report: SourceReport) -> None:
    problems = [str(p) for p in getattr(source, "problems", [])]
    # Only a clean read proves that a missing item is gone: a file with a typo, or a feed
    # read leniently, must not make articles disappear.
    complete = getattr(source, "complete", True) and not problems
    window = None if problems else getattr(source, "window", None)
    counts: UpsertCounts = upsert_items(conn, name, fetched, clock.now(), complete=complete,
                                        window=window)
    report.fetched = len(fetched)
    report.new, report.updated, report.deleted = counts.new, counts.updated, counts.deleted
    report.duplicates = counts.duplicates
    report.problems = problems
    report.warnings = [str(w) for w in getattr(source, "warnings", [])]


def config_fingerprint(source: Source) -> str | None:
    """A hash of a source's configuration and our parsing rules' version.

    Validators earned under another configuration are not used: a 304 must not keep items
    that were imported with an old topic mapping or older parsing rules.
    """
    config = getattr(source, "config", None)
    if config is None:
        return None
    blob = json.dumps([PARSING_VERSION, dataclasses.asdict(config)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def reason(exc: BaseException, source: Source) -> str:
    """Why a source failed, for the editors: Dutch, naming the location they configured."""
    if isinstance(exc, StatementError):
        return database_reason()
    config = getattr(source, "config", None)
    return editor_reason(exc, config) if config is not None else describe(exc)


def describe(exc: BaseException) -> str:
    """One line saying why a source failed, for the operators (log, source_state)."""
    if isinstance(exc, ContentError | FetchError):
        return str(exc)
    if isinstance(exc, StatementError):  # not the SQL, its parameters or a failing row
        return f"database error: {driver_reason(exc)}"
    return f"{type(exc).__name__}: {exc}"
