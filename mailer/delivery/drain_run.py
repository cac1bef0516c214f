"""What the sender threads of one drain share: the report of what it did, the error
budget, and the flag that halts them all."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from sqlalchemy.exc import DBAPIError

from mailer.delivery.budget import ErrorBudget
from mailer.models import DeliveryOutcome, OutboxStatus, RecipientStatus
from mailer.store.outbox import Recorded

DELIVERED = {DeliveryOutcome.SENT, DeliveryOutcome.QUEUED}


@dataclass
class RowCounts:
    """What drains recorded: rows per new status, batches, flagged and lost answers;
    a drain's report and a worker's (summed over its drains) both count these."""

    sent: int = 0
    failed: int = 0
    retrying: int = 0
    batches: int = 0
    possible_duplicates: int = 0
    # Answers thrown away: another worker had taken their rows over (and decides them).
    lost_to_takeover: int = 0

    def add_counts(self, other: RowCounts) -> None:
        """Add another's counts to these."""
        for f in fields(RowCounts):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class DrainReport(RowCounts):
    """What one drain did."""

    bounced: int = 0
    stopped: bool = False
    paused: str | None = None  # why the issue was paused (error budget, provider down, ...)
    # Distinct provider errors in the order they first occurred, with how often each did.
    error_counts: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        """The distinct provider errors, first first."""
        return list(self.error_counts)


@dataclass
class DrainRun:
    """State the threads of one drain share, behind one lock."""

    report: DrainReport
    lock: threading.Lock
    halt: threading.Event
    budget: ErrorBudget
    on_progress: Callable[[DrainReport], None] | None
    batch_size: int
    database_error: DBAPIError | None = None
    failed_calls: int = 0  # whole-call failures in a row, over all threads

    def account(self, recorded: Recorded, statuses: list[RecipientStatus],
                bounced: int) -> None:
        """Add a batch to the report and the error budget, as far as it was recorded: the
        answers the fence threw away are the worker's that took their rows over."""
        by_status = recorded.by_status  # counted by the database, per UPDATE
        with self.lock:
            r = self.report
            r.batches += 1
            r.bounced += bounced
            r.sent += by_status[OutboxStatus.SENT]
            r.failed += by_status[OutboxStatus.FAILED]
            r.retrying += by_status[OutboxStatus.QUEUED]
            r.possible_duplicates += recorded.possible_duplicates
            r.lost_to_takeover += recorded.missed
            if not recorded.missed:  # only the first recipients of a run reach the budget
                for s in statuses[:self.budget.room()]:
                    self.budget.count(s.outcome not in DELIVERED)
            else:  # which rows were recorded is known per status only
                sent = by_status[OutboxStatus.SENT]
                self.budget.count_unordered(recorded.rows - sent, sent)
            exhausted = self.budget.exhausted()
            if self.on_progress:
                self.on_progress(r)
        if exhausted:
            self.halt_with(exhausted)

    def call_answered(self) -> None:
        """A provider call was answered (or may have been accepted): the provider is up."""
        with self.lock:
            self.failed_calls = 0

    def call_failed(self, error: str, limit: int) -> None:
        """A call failed as a whole after its retries, unsent; at `limit` such calls in a
        row the drain halts with a pause, instead of every row using up its attempts on
        a provider that cannot be reached (the rows stay queued for a resume)."""
        with self.lock:
            self.failed_calls += 1
            count = self.failed_calls
        if count >= limit:
            self.halt_with(
                f"paused: provider unreachable or failing: {count} calls in a row failed "
                f"after their retries (last: {error}); nothing of them was sent and their "
                "rows stay queued; once the provider works again, `mailer issues resume N`")

    def note_error(self, message: str) -> None:
        # Each call and each sender thread meets the same error (a wrong key): keep it
        # once with a count, so a different error later still finds room.
        with self.lock:
            counts = self.report.error_counts
            if message in counts:
                counts[message] += 1
            elif len(counts) < 20:
                counts[message] = 1

    def lost_database(self, error: DBAPIError) -> None:
        """Stop every thread; the drain raises the first database error after them."""
        with self.lock:
            self.database_error = self.database_error or error
        self.halt.set()

    def halt_with(self, reason: str) -> None:
        with self.lock:
            self.report.paused = self.report.paused or reason
        self.halt.set()
