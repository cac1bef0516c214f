"""Reading subscriber CSV files (email, name, sections, themes, audience) and importing them."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from mailer.addresses import normalize_email
from mailer.models import SECTIONS, Preferences, Subscriber, SubscriberStatus
from mailer.store import subscribers as subs
from mailer.subscriber_mail import MailJob


@dataclass(frozen=True)
class CsvRow:
    """One valid CSV line."""

    line: int
    email: str
    name: str
    preferences: Preferences
    pending: bool = False  # its `status` column says the person never confirmed


@dataclass(frozen=True)
class Rejected:
    """One CSV line that could not be used, and why."""

    line: int
    reason: str


def parse_csv(path: Path, themes: set[str]) -> tuple[list[CsvRow], list[Rejected]]:
    """Parse a subscriber CSV; every unusable line is reported with its number and reason."""
    rows: list[CsvRow] = []
    rejected: list[Rejected] = []
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # e.g. Excel's "CSV" in windows-1252: names would garble
        line = data.count(b"\n", 0, exc.start) + 1
        return [], [Rejected(line, "not UTF-8 text; save the file as CSV UTF-8")]
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle, delimiter=field_separator(text))
        if not reader.fieldnames or "email" not in reader.fieldnames:
            found = ", ".join(reader.fieldnames or []) or "nothing"
            return [], [Rejected(1, f"header must contain an 'email' column, found: {found}")]
        for record in reader:
            line = reader.line_num
            try:
                rows.append(_row(line, record, themes))
            except ValueError as exc:
                rejected.append(Rejected(line, str(exc)))
    return rows, rejected


def field_separator(text: str) -> str:
    """',' or, when only that makes the header name an `email` column, ';' (what Excel
    writes as "CSV" under Dutch regional settings)."""
    header = text.split("\n", 1)[0]
    semicolon_names = {name.strip().strip('"') for name in header.split(";")}
    comma_names = {name.strip().strip('"') for name in header.split(",")}
    return ";" if "email" in semicolon_names and "email" not in comma_names else ","


# A `status` column (as `mailer subscribers export` writes) saying a person left or must
# not be mailed: importing the line would subscribe them again without their consent.
NOT_IMPORTED = {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED,
                SubscriberStatus.COMPLAINED, SubscriberStatus.ERASED}


def _row(line: int, record: dict[str, str | None], themes: set[str]) -> CsvRow:
    if not (record.get("email") or "").strip():
        raise ValueError("the email column is empty")
    email = normalize_email(record.get("email") or "")
    if (status := (record.get("status") or "").strip().lower()) in NOT_IMPORTED:
        raise ValueError(f"status {status}: not imported")
    sections = _split(record.get("sections")) or set(SECTIONS)
    if unknown := sections - set(SECTIONS):
        raise ValueError(f"unknown section(s) {', '.join(sorted(unknown))}")
    # Audiences (onderwijs, jeugdhulp, ...) are configured together with the themes.
    chosen = _split(record.get("themes")) | _split(record.get("audience"))
    if unknown := chosen - themes:
        raise ValueError(f"unknown theme(s) or audience(s) {', '.join(sorted(unknown))}")
    return CsvRow(line, email, record.get("name") or "",
                  Preferences(frozenset(sections), frozenset(chosen)),
                  pending=status == SubscriberStatus.PENDING)


def _split(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").replace(",", ";").split(";") if part.strip()}


@dataclass
class ImportReport:
    """What an import did; `mails` are the confirmations to send (pending imports), `again`
    how many of them go to addresses already pending, `limited` the addresses due one
    that their mail limit held back."""

    added: int = 0
    merged: int = 0
    existing: int = 0
    refused: list[Rejected] = field(default_factory=list)
    mails: list[MailJob] = field(default_factory=list)
    again: int = 0
    limited: list[str] = field(default_factory=list)


def merge_duplicates(rows: list[CsvRow]) -> tuple[list[CsvRow], int]:
    """One row per address (case-insensitive): sections and themes united, first name kept."""
    merged: dict[str, CsvRow] = {}
    for row in rows:
        key = row.email.lower()
        if key in merged:
            first = merged[key]
            prefs = Preferences(first.preferences.sections | row.preferences.sections,
                                first.preferences.themes | row.preferences.themes)
            merged[key] = CsvRow(first.line, first.email, first.name or row.name, prefs,
                                 pending=first.pending or row.pending)
        else:
            merged[key] = row
    return list(merged.values()), len(rows) - len(merged)


MailFor = Callable[[Connection, Subscriber], MailJob | None]
MailAgain = Callable[[Connection, Subscriber], bool]


def import_rows(conn: Connection, rows: list[CsvRow], *, confirmed: bool,
                context: subs.ConsentContext, note: str | None, now: datetime,
                mail_for: MailFor | None = None,
                mail_again: MailAgain | None = None) -> ImportReport:
    """Add rows as active (consent recorded with a note) or pending subscribers.

    Duplicates in the file are merged; addresses already present are left as they are;
    suppressed (erased, bounced, complained) addresses are refused, never re-added.
    `mail_for(conn, subscriber)` makes the confirmation MailJob for a pending row (None
    over the address's mail limit); `mail_again(conn, subscriber)` says whether a known
    pending one is due its confirmation again (the earlier mail failed or has expired).
    """
    unique, duplicates = merge_duplicates(rows)
    report = ImportReport(merged=duplicates)
    status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING
    for row in unique:
        if confirmed and row.pending:
            # An export's pending person never gave consent: --confirmed must not make it up.
            report.refused.append(Rejected(row.line, "status pending: never confirmed, not "
                                                     "imported as active (import it without "
                                                     "--confirmed to send a confirmation mail)"))
        elif known := subs.find_by_email(conn, row.email):
            report.existing += 1
            if not confirmed and mail_for and mail_again and mail_again(conn, known):
                report.again += _confirmation(conn, known, mail_for, report)
        elif subs.is_suppressed(conn, row.email):
            report.refused.append(Rejected(row.line, "address is suppressed (erased, bounced "
                                                     "or complained); not re-added"))
        else:
            sub = subs.add_subscriber(
                conn, email=row.email, name=row.name, preferences=row.preferences,
                status=status, source=context.source, now=now,
                consent_text_version=context.consent_text_version, note=note)
            report.added += 1
            if not confirmed and mail_for:
                _confirmation(conn, sub, mail_for, report)
    return report


def _confirmation(conn: Connection, sub: Subscriber, mail_for: MailFor,
                  report: ImportReport) -> int:
    """Add a pending subscriber's confirmation to the report's mails (or to `limited`);
    returns 1 if a mail is due to go out, else 0."""
    job = mail_for(conn, sub)
    if job is None:
        report.limited.append(sub.email)
        return 0
    report.mails.append(job)
    return 1


def import_confirmed(conn: Connection, rows: list[CsvRow], *, source: str, note: str,
                     now: datetime) -> ImportReport:
    """Add rows as active subscribers with recorded consent; existing and suppressed skipped."""
    return import_rows(conn, rows, confirmed=True, context=subs.ConsentContext(source),
                       note=note, now=now)
