"""Proofs: a record of each test send of an issue, for "what changed since the last proof"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from mailer.models import Issue
from mailer.store.tables import proofs


@dataclass(frozen=True)
class ProofRecord:
    """One test send as recorded: what was in it, not who received it."""

    id: int
    period: str
    subject: str
    preheader: str
    item_ids: frozenset[int]
    html_bytes: int
    recipients: int
    created_at: datetime


def issue_item_ids(issue: Issue) -> list[int]:
    """The ledger ids of every article and event in an issue, sorted."""
    return sorted(s.id for s in (*issue.magazine, *issue.events))


def record_proof(conn: Connection, issue: Issue, *, segment_key: str, html: str,
                 recipients: int, now: datetime) -> int:
    """Store that a proof of this issue (one segment) went out; returns the proof id."""
    return conn.execute(insert(proofs).values(
        list_id=issue.list_id, period=issue.period, issue_id=issue.id, segment_key=segment_key,
        subject=issue.subject, preheader=issue.preheader, item_ids=issue_item_ids(issue),
        html_bytes=len(html.encode("utf-8")), recipients=recipients, created_at=now,
    )).inserted_primary_key[0]


def last_proof(conn: Connection, list_id: str, period: str) -> ProofRecord | None:
    """The newest proof sent for a list's issue of a period."""
    row = conn.execute(
        select(proofs).where(proofs.c.list_id == list_id, proofs.c.period == period)
        .order_by(proofs.c.created_at.desc(), proofs.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return ProofRecord(row.id, row.period, row.subject, row.preheader,
                       frozenset(int(i) for i in row.item_ids), row.html_bytes, row.recipients,
                       row.created_at)
