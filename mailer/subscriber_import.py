"""Reading subscriber CSV files (email, name, sections, themes) and importing them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from mailer.models import SECTIONS, Preferences, SubscriberStatus
from mailer.store import subscribers as subs


@dataclass(frozen=True)
class CsvRow:
    """One valid CSV line."""

    line: int
    email: str
    name: str
    preferences: Preferences


@dataclass(frozen=True)
class Rejected:
    """One CSV line that could not be used, and why."""

    line: int
    reason: str


def parse_csv(path: Path, themes: set[str]) -> tuple[list[CsvRow], list[Rejected]]:
    """Parse a subscriber CSV; every unusable line is reported with its number and reason."""
    rows: list[CsvRow] = []
    rejected: list[Rejected] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "email" not in reader.fieldnames:
            return [], [Rejected(1, "header must contain an 'email' column")]
        for record in reader:
            line = reader.line_num
            try:
                rows.append(_row(line, record, themes))
            except ValueError as exc:
                rejected.append(Rejected(line, str(exc)))
    return rows, rejected


def _row(line: int, record: dict[str, str | None], themes: set[str]) -> CsvRow:
    email = subs.normalize_email(record.get("email") or "")
    sections = _split(record.get("sections")) or set(SECTIONS)
    if unknown := sections - set(SECTIONS):
        raise ValueError(f"unknown section(s) {', '.join(sorted(unknown))}")
    chosen = _split(record.get("themes"))
    if unknown := chosen - themes:
        raise ValueError(f"unknown theme(s) {', '.join(sorted(unknown))}")
    return CsvRow(line, email, record.get("name") or "", Preferences(frozenset(sections),
                                                                      frozenset(chosen)))


def _split(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").replace(",", ";").split(";") if part.strip()}


@dataclass
class ImportReport:
    """What an import did."""

    added: int = 0
    merged: int = 0
    refused: list[Rejected] | None = None


def import_confirmed(conn: Connection, rows: list[CsvRow], *, source: str, note: str,
                     now: datetime) -> ImportReport:
    """Add rows as active subscribers with recorded consent; existing and suppressed skipped."""
    report = ImportReport(refused=[])
    seen: set[str] = set()
    for row in rows:
        if row.email in seen or subs.find_by_email(conn, row.email):
            report.merged += 1
        elif subs.is_suppressed(conn, row.email):
            report.refused.append(Rejected(row.line, "address is suppressed; not re-added"))
        else:
            subs.add_subscriber(conn, email=row.email, name=row.name, preferences=row.preferences,
                                status=SubscriberStatus.ACTIVE, source=source, now=now, note=note)
            report.added += 1
        seen.add(row.email)
    return report
