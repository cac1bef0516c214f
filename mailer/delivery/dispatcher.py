"""The dispatcher: claim a batch, personalise it cheaply, hand it to the provider, record.

Progress is recorded per batch *after* the provider answered, and each row's status comes
from the provider's per-recipient answer, so a crash can strand at most the rows of the
batches in flight, and those stay in `sending` for `resume_stranded` to decide.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from mailer.clock import Clock
from mailer.errors import ProviderError
from mailer.links import Links
from mailer.message import list_headers
from mailer.models import Batch, DeliveryOutcome, OutboxStatus, Recipient, RecipientStatus
from mailer.providers import Provider
from mailer.render.personalize import greeting
from mailer.store import outbox as box
from mailer.store.outbox import ClaimedRow, Outcome

log = logging.getLogger(__name__)

PERMANENT = {DeliveryOutcome.INVALID, DeliveryOutcome.REJECTED}
DELIVERED = {DeliveryOutcome.SENT, DeliveryOutcome.QUEUED}


@dataclass(frozen=True)
class ListIdentity:
    """What every message of the list says about the list."""

    list_id: str
    list_name: str
    unsubscribe_mailto: str


@dataclass
class DrainReport:
    """What one drain did."""

    sent: int = 0
    failed: int = 0
    retrying: int = 0
    batches: int = 0
    possible_duplicates: int = 0
    stopped: bool = False
    errors: list[str] = field(default_factory=list)


class Dispatcher:
    """Drains one issue's outbox through one provider."""

    def __init__(self, engine: Engine, provider: Provider, links: Links, identity: ListIdentity,
                 clock: Clock, *, worker: str, batch_size: int, max_attempts: int,
                 lease: timedelta):
        self.engine = engine
        self.provider = provider
        self.links = links
        self.identity = identity
        self.clock = clock
        self.worker = worker
        self.batch_size = min(batch_size or provider.max_batch, provider.max_batch)
        self.max_attempts = max_attempts
        self.lease = lease

    def drain(self, issue_id: int, stop: threading.Event | None = None) -> DrainReport:
        """Send batches until no due queued row is left or `stop` is set between batches."""
        report = DrainReport()
        with self.engine.connect() as conn:
            renders = box.load_renders(conn, issue_id)
        while not (stop and stop.is_set()):
            with self.engine.begin() as conn:
                rows = box.claim_batch(conn, issue_id, self.worker, self.batch_size,
                                       self.clock.now(), self.lease)
            if not rows:
                break
            for segment, group in _by_segment(rows).items():
                self._send_group(issue_id, renders[segment], segment, group, report)
            report.batches += 1
        report.stopped = bool(stop and stop.is_set())
        return report

    def _send_group(self, issue_id: int, render: tuple[str, str, str], segment: str,
                    rows: list[ClaimedRow], report: DrainReport) -> None:
        batch = self.batch_for(issue_id, render, segment, rows)
        try:
            statuses = self.provider.send_batch(batch)
        except ProviderError as exc:
            log.warning("provider call failed for %d rows: %s", len(rows), exc)
            report.errors.append(str(exc))
            statuses = [RecipientStatus(
                DeliveryOutcome.FAILED if exc.retryable else DeliveryOutcome.UNKNOWN,
                detail=str(exc))] * len(rows)
        outcomes = [self.outcome_for(row, status) for row, status in zip(rows, statuses, strict=True)]
        with self.engine.begin() as conn:
            box.record_outcomes(conn, outcomes, self.clock.now())
        for o in outcomes:
            report.sent += o.status is OutboxStatus.SENT
            report.failed += o.status is OutboxStatus.FAILED
            report.retrying += o.status is OutboxStatus.QUEUED
            report.possible_duplicates += o.possible_duplicate

    def batch_for(self, issue_id: int, render: tuple[str, str, str], segment: str,
                  rows: list[ClaimedRow], *, test: bool = False) -> Batch:
        """A provider batch for rows of one segment, personal values filled in."""
        subject, html, text = render
        return Batch(
            issue_id=issue_id, segment_key=segment, subject=subject, html=html, text=text,
            recipients=tuple(self.recipient_for(r) for r in rows),
            headers={"List-Id": f"{self.identity.list_name} <{self.identity.list_id}>"},
            metadata={"issue_id": str(issue_id)}, test=test,
        )

    def recipient_for(self, row: ClaimedRow) -> Recipient:
        """Personal values and headers of one row: signed links, greeting."""
        unsubscribe = self.links.unsubscribe_url(row.subscriber_id, row.token_version)
        headers = list_headers(self.identity.list_id, self.identity.list_name, unsubscribe,
                               self.identity.unsubscribe_mailto)
        headers.pop("List-Id")
        return Recipient(
            outbox_id=row.id, subscriber_id=row.subscriber_id, email=row.email, name=row.name,
            message_id=row.message_id,
            values={
                "greeting": greeting(row.name),
                "unsubscribe_url": unsubscribe,
                "preferences_url": self.links.preferences_url(row.subscriber_id, row.token_version),
            },
            headers=headers,
        )

    def outcome_for(self, row: ClaimedRow, status: RecipientStatus) -> Outcome:
        """Map a provider answer for one row to its next outbox state."""
        if status.outcome in DELIVERED:
            return Outcome(row.id, OutboxStatus.SENT, provider_message_id=status.provider_id)
        if status.outcome in PERMANENT:
            return Outcome(row.id, OutboxStatus.FAILED, error=f"{status.outcome}: {status.detail}")
        duplicate = status.outcome is DeliveryOutcome.UNKNOWN
        if row.attempts >= self.max_attempts:
            return Outcome(row.id, OutboxStatus.FAILED, possible_duplicate=duplicate,
                           error=f"gave up after {row.attempts} attempts: {status.detail}")
        return Outcome(row.id, OutboxStatus.QUEUED, error=status.detail,
                       retry_at=self.clock.now() + backoff(row.attempts),
                       possible_duplicate=duplicate)

    def resume_stranded(self, issue_id: int, *, include_live_leases: bool = False) -> int:
        """Decide rows a crash left in `sending`: ask the provider, else send again as a
        possible duplicate. Returns how many rows were decided."""
        with self.engine.connect() as conn:
            rows = box.stranded_rows(conn, issue_id, self.clock.now(), include_live_leases)
        if not rows:
            return 0
        known = self._reconcile(issue_id, rows)
        outcomes = [self._stranded_outcome(row, status) for row, status in zip(rows, known, strict=True)]
        with self.engine.begin() as conn:
            box.record_outcomes(conn, outcomes, self.clock.now())
        return len(outcomes)

    def _reconcile(self, issue_id: int, rows: list[ClaimedRow]) -> list[RecipientStatus | None]:
        reconcile = getattr(self.provider, "reconcile", None)
        if reconcile is None:
            return [None] * len(rows)
        return reconcile(issue_id, [self.recipient_for(r) for r in rows])

    def _stranded_outcome(self, row: ClaimedRow, status: RecipientStatus | None) -> Outcome:
        if status is not None and status.outcome in DELIVERED:
            return Outcome(row.id, OutboxStatus.SENT, provider_message_id=status.provider_id)
        if status is not None:  # the provider knows it never got it: safe to send again
            return Outcome(row.id, OutboxStatus.QUEUED, error="not sent before the crash")
        return Outcome(row.id, OutboxStatus.QUEUED, possible_duplicate=True,
                       error="in flight at a crash; sent again, may arrive twice")


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter: up to 30 s, 60 s, 120 s, ... capped at 1 hour."""
    ceiling = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _by_segment(rows: list[ClaimedRow]) -> dict[str, list[ClaimedRow]]:
    groups: dict[str, list[ClaimedRow]] = {}
    for row in rows:
        groups.setdefault(row.segment_key, []).append(row)
    return groups
