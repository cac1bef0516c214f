"""The dispatcher: claim a batch, personalise it cheaply, hand it to the provider, record.

Progress is recorded per batch *after* the provider answered, and each row's status comes
from the provider's per-recipient answer, so a crash can strand at most the rows of the
batches in flight, and those stay in `sending` for `resume_stranded` to decide. A claim
is recorded only while it still holds its rows (worker and batch key), and its lease is
renewed while it is being sent (`leases.Leases.hold`), so only a dead worker's rows run out.
Rows taken over after a crash are held the same way while they are decided. Reports and
the error budget count only the rows a recording changed (as the database counts them),
so an answer the fence threw away is counted by nobody but the worker that decided it.

Several threads drain at once (each with its own HTTP session inside the provider); a
shared RateLimiter paces them and slows down on 429; whole-call failures are retried with
backoff; an error budget pauses the issue when too many of the first recipients fail, and
calls that keep failing as a whole (the provider unreachable or down) pause it too, their
rows given back to the queue unsent instead of spending their attempts.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from mailer.clock import Clock
from mailer.delivery.budget import ErrorBudget
from mailer.delivery.drain_run import DELIVERED, DrainReport, DrainRun
from mailer.delivery.heap import settled_heap
from mailer.delivery.leases import Lease, LeaseLost, Leases, reconcile_chunk, taken_over
from mailer.delivery.pacing import RateLimiter, retry_delay
from mailer.errors import MailerError, ProviderError
from mailer.links import Links
from mailer.liveness import owner_is_dead
from mailer.message import list_id_value, unsubscribe_headers
from mailer.models import (
    Batch,
    DeliveryOutcome,
    IssueStatus,
    OutboxStatus,
    Recipient,
    RecipientStatus,
    SubscriberStatus,
)
from mailer.providers import Provider
from mailer.render.personalize import greeting
from mailer.store import issues as issue_store
from mailer.store import outbox as box
from mailer.store import outbox_fill, privacy
from mailer.store import subscribers as subs
from mailer.store.db import driver_reason, write_transaction
from mailer.store.outbox import ClaimedRow, Outcome, Recorded

log = logging.getLogger(__name__)

PERMANENT = {DeliveryOutcome.INVALID, DeliveryOutcome.REJECTED}
HEADER_ALLOWANCE = 4096  # headers and personal values on top of the rendered bodies


class MessageTooLarge(MailerError):
    """A rendered segment is larger than the provider accepts; nothing was sent for it."""


class CallFailed(Exception):
    """A provider call failed as a whole after its retries, and none of its attempts can
    have been accepted: its rows were not sent, and go back to the queue as they were."""

    def __init__(self, error: ProviderError):
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class ListIdentity:
    """What every message of the list says about the list."""

    list_id: str
    list_name: str
    unsubscribe_mailto: str


class Dispatcher:
    """Drains one issue's outbox through one provider."""

    def __init__(self, engine: Engine, provider: Provider, links: Links, identity: ListIdentity,
                 clock: Clock, *, worker: str, batch_size: int, max_attempts: int,
                 lease: timedelta, request_timeout: float = 30.0, concurrency: int = 1,
                 rate: float = 0.0,
                 call_attempts: int = 4, retry_base: float = 0.5,
                 error_budget: float = 0.05, budget_window: int = 500,
                 failed_calls_to_pause: int = 3):
        self.engine = engine
        self.provider = provider
        self.links = links
        self.identity = identity
        self.clock = clock
        self.worker = worker
        self.batch_size = min(batch_size or provider.max_batch, provider.max_batch)
        self.max_attempts = max_attempts
        self.lease = lease
        self.reconcile_chunk = reconcile_chunk(lease, request_timeout)
        self.leases = Leases(engine, clock, lease)
        self.concurrency = max(1, concurrency)
        self.limiter = RateLimiter(rate)
        self.call_attempts = max(1, call_attempts)
        self.retry_base = retry_base
        self.error_budget = error_budget
        self.budget_window = budget_window
        self.failed_calls_to_pause = max(1, failed_calls_to_pause)

    # -- draining ---------------------------------------------------------------------

    def drain(self, issue_id: int, stop: threading.Event | None = None,
              on_progress: Callable[[DrainReport], None] | None = None) -> DrainReport:
        """Send batches from several threads until no due queued row is left, `stop` is
        set (each thread records its batch in flight first) or the error budget runs out."""
        stop = stop or threading.Event()
        report = DrainReport()
        with self.engine.connect() as conn:
            renders = outbox_fill.load_renders(conn, issue_id)
        size = self.check_sizes(renders)
        run = DrainRun(report, threading.Lock(), threading.Event(),
                   ErrorBudget(self.error_budget, self.budget_window), on_progress,
                   self._batch_size_for(size))
        threads = [threading.Thread(target=self._work, args=(issue_id, renders, run, stop),
                                    name=f"send-{i}", daemon=True)
                   for i in range(self.concurrency)]
        with settled_heap():
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        if run.database_error is not None:  # for the caller to say, or to back off and retry
            raise run.database_error
        report.stopped = stop.is_set()
        if report.paused:
            with self.engine.begin() as conn:
                issue_store.set_issue_status(conn, issue_id, IssueStatus.PAUSED, self.clock.now(),
                                             note=report.paused)
        return report

    def check_sizes(self, renders: dict[str, tuple[str, str, str]]) -> int:
        """The largest message of the issue in bytes; MessageTooLarge if the provider
        would refuse it, before anything is sent."""
        limit = getattr(self.provider, "max_message_bytes", None)
        largest = 0
        for segment, (subject, html, text) in renders.items():
            size = len(html.encode()) + len(text.encode()) + len(subject.encode())
            size += HEADER_ALLOWANCE
            largest = max(largest, size)
            if limit and size > limit:
                raise MessageTooLarge(
                    f"the message for segment {segment!r} is {size:,} bytes; provider "
                    f"{self.provider.name} accepts at most {limit:,}. Nothing was sent; "
                    "shorten the issue and send again.")
        return largest

    def _batch_size_for(self, message_bytes: int) -> int:
        limit = getattr(self.provider, "batch_limit", None)
        return min(self.batch_size, limit(message_bytes)) if limit else self.batch_size

    def _work(self, issue_id: int, renders: dict, run: DrainRun, stop: threading.Event) -> None:
        while not (stop.is_set() or run.halt.is_set()):
            key = uuid.uuid4().hex
            try:
                with write_transaction(self.engine) as conn:
                    rows = box.claim_batch(conn, issue_id, self.worker, run.batch_size,
                                           self.clock.now(), self.lease, batch_key=key)
                    # Nothing claimed: done, or the issue is no longer sending (claims
                    # take only rows of a sending issue), e.g. another worker paused it.
                    paused = None if rows else _paused_elsewhere(conn, issue_id)
                if paused:
                    run.halt_with(paused)
                if not rows:
                    return
                self._send_claim(issue_id, renders, rows, run, stop)
            except DBAPIError as exc:
                # The database went away (restart, failover, a dropped connection): nothing
                # about the issue needs an editor, so it is not paused. Rows sent but not
                # recorded stay leased in `sending`, to be decided after the lease.
                log.warning("database error while sending; stopping this drain: %s",
                            driver_reason(exc))
                run.lost_database(exc)
                return
            except Exception as exc:  # noqa: BLE001 - a bug must not strand rows silently
                log.exception("sending a batch failed unexpectedly")
                run.halt_with(f"unexpected error: {exc}")
                return

    def _send_claim(self, issue_id: int, renders: dict, rows: list[ClaimedRow], run: DrainRun,
                    stop: threading.Event) -> None:
        """Send a claimed batch, one provider call per segment, renewing its lease on the
        way; once the drain halts (the error budget ran out, the issue was paused
        elsewhere), another worker has taken rows of the claim over or a call failed
        without reaching anyone, the segments not yet sent go back to the queue as they
        were (those still held by the claim)."""
        groups = list(_by_segment(rows).items())
        # Claims come in id order: the first and the last row bound its ids.
        lease = Lease(issue_id, self.worker, (rows[0].batch_key,), (rows[0].id, rows[-1].id),
                       rows[0].lease_until or self.clock.now(), len(rows))
        for n, (segment, group) in enumerate(groups):
            if run.halt.is_set():
                break
            try:
                self._send_group(issue_id, renders[segment], segment, group, run, stop,
                                 lease, more=n + 1 < len(groups))
            except (LeaseLost, CallFailed):
                break
        else:
            return
        with write_transaction(self.engine) as conn:
            box.release_unsent(conn, [r.id for _, g in groups[n:] for r in g],
                               lease.holder, self.clock.now(), rows[0].batch_key)

    def _send_group(self, issue_id: int, render: tuple[str, str, str], segment: str,
                    rows: list[ClaimedRow], run: DrainRun, stop: threading.Event, lease: Lease,
                    *, more: bool = False) -> None:
        """Send and record one segment's rows; with `more` segments of the claim to go,
        also see (in the same transaction) whether the issue was paused elsewhere.
        LeaseLost when answers were thrown away: another worker took the rows over;
        CallFailed, with nothing recorded, when the call failed without reaching anyone."""
        batch = self.batch_for(issue_id, render, segment, rows)
        try:
            statuses, pause = self._call(batch, run, stop, lease)
        except CallFailed as exc:
            if not stop.is_set():  # a stop cut its retries short: that says nothing
                run.call_failed(str(exc.error), self.failed_calls_to_pause)
            raise
        run.call_answered()
        outcomes = [self.outcome_for(row, s) for row, s in zip(rows, statuses, strict=True)]
        with write_transaction(self.engine) as conn:
            recorded, erased = self._record(conn, rows, outcomes, lease.holder,
                                            rows[0].batch_key)
            bounced = self._mark_bounced(conn, rows, statuses)
            pause = pause or (_paused_elsewhere(conn, issue_id) if more else None)
        lease.unsent -= len(rows)
        self._erase_copies(erased)
        run.account(recorded, statuses, bounced)
        if pause:
            run.halt_with(pause)
        if recorded.missed:
            raise taken_over(lease, recorded.missed, "answers thrown away")

    def _call(self, batch: Batch, run: DrainRun, stop: threading.Event, lease: Lease
              ) -> tuple[list[RecipientStatus], str | None]:
        """Call the provider with retries; returns statuses and a reason to pause, if any.
        Raises LeaseLost, before a call, when another worker has taken the rows over, and
        CallFailed when every attempt failed and none can have been accepted."""
        n = len(batch.recipients)
        error: ProviderError | None = None
        # The first attempt the provider may have accepted. It decides the call whatever
        # the later attempts meet: a retry that cannot connect or gets a 503 says nothing
        # about it, and a row recorded failed or given back unsent would be resent as if
        # nobody had got it.
        ambiguous: ProviderError | None = None
        maybe_accepted = False
        for attempt in range(1, self.call_attempts + 1):
            if not self.limiter.acquire(n, stop) and error is not None:
                break
            self.leases.hold(lease, 0.0, maybe_accepted)  # also after a long pacing wait
            try:
                statuses = self.provider.send_batch(batch)
                self.limiter.succeeded(n)
                return statuses, None
            except ProviderError as exc:
                error = exc
                run.note_error(str(exc))
                if exc.status == 429:
                    self.limiter.throttled(exc.retry_after)
                ambiguous = ambiguous or (exc if exc.maybe_accepted else None)
                maybe_accepted = ambiguous is not None
                if not exc.retryable:
                    return self._refused(batch, exc, ambiguous)
                if exc.maybe_accepted and not getattr(self.provider, "idempotent", False):
                    return self._after_ambiguous(batch, exc), None
                if attempt == self.call_attempts:
                    break
                if exc.status == 429:  # the wait is the limiter's, at the next acquire
                    self.leases.hold(lease, exc.retry_after or 1.0, maybe_accepted)
                    continue
                delay = retry_delay(attempt, exc.retry_after, base=self.retry_base)
                self.leases.hold(lease, delay, maybe_accepted)
                if stop.wait(delay):
                    break
        assert error is not None
        if ambiguous is None:
            # Refused, unreachable or 5xx each time: nobody got it. Its rows are no worse
            # than before the claim, so they keep their attempts (for the recipients' own
            # failures) and the drain pauses if calls keep failing (`DrainRun.call_failed`).
            raise CallFailed(error)
        return self._after_ambiguous(batch, ambiguous), None

    def _refused(self, batch: Batch, exc: ProviderError, ambiguous: ProviderError | None
                 ) -> tuple[list[RecipientStatus], str]:
        """The statuses of a call the provider refused as a whole, and the reason to pause:
        failed, unless an earlier attempt may have been accepted."""
        pause = f"{self.provider.name} refused a whole batch: {exc}"
        if ambiguous is not None:
            return self._after_ambiguous(batch, ambiguous), pause
        return [RecipientStatus(DeliveryOutcome.FAILED, detail=str(exc))] * len(
            batch.recipients), pause

    def _after_ambiguous(self, batch: Batch, exc: ProviderError) -> list[RecipientStatus]:
        """The call may have been accepted: ask the provider; what it cannot tell is
        resent later and counted as a possible duplicate.

        The lease is not renewed during these look-ups (one request per row at Mailgun
        and Postmark), unlike `_reconcile`'s: renewing could raise LeaseLost, and the
        claim's way out of that (`_send_claim` gives the unsent segments back with
        `release_unsent`) would put rows of this maybe-accepted call, still held by us,
        back in the queue as never sent: a resend nobody declares. Should a large batch
        outlast the lease, a taker decides its rows by the same look-up (these providers
        are not idempotent, so `_can_resend_identical` never resends them blind) and
        flags what it cannot find as possible duplicates; our answer is then fenced
        out. Renewing here first needs LeaseLost to record the held rows as unknown."""
        try:
            known = self.provider.reconcile(batch.issue_id, list(batch.recipients))
        except ProviderError:
            known = [None] * len(batch.recipients)
        return [k if k is not None and k.outcome in DELIVERED
                else RecipientStatus(DeliveryOutcome.FAILED, detail=str(exc)) if k is not None
                else RecipientStatus(DeliveryOutcome.UNKNOWN, detail=str(exc))
                for k in known]

    def _record(self, conn, rows: list[ClaimedRow], outcomes: list[Outcome], holder: str,
                batch_key: str | None) -> tuple[Recorded, list[str]]:
        """Record outcomes of rows of one claim (fenced on it: its holder, that batch key);
        what was recorded, and the addresses of subscribers erased while their rows
        were in flight, whose provider data is cleaned as `privacy.erase` cleans it
        (`forget` ran before the answer was written, and must not be undone by it)."""
        recorded = box.record_outcomes(conn, outcomes, self.clock.now(), holder, batch_key)
        if not recorded.erased:
            return recorded, []
        gone = set(recorded.erased)
        addresses = []
        for row in rows:
            if row.id in gone:
                privacy.erase_from_delivery_records(conn, row.subscriber_id, row.email)
                addresses.append(row.email)
        return recorded, addresses

    def _erase_copies(self, addresses: list[str]) -> None:
        """Delete the copies a provider keeps here (the file provider's .eml) of messages
        to erased addresses: written after `forget` deleted the earlier ones."""
        erase = getattr(self.provider, "erase_copies_of", None)
        if erase is not None and addresses:
            erase(addresses)

    def _mark_bounced(self, conn, rows: list[ClaimedRow],
                      statuses: list[RecipientStatus]) -> int:
        count = 0
        for row, status in zip(rows, statuses, strict=True):
            # from_provider: they may have been erased or complained while the call ran.
            if status.bounced:
                count += subs.set_status(conn, row.subscriber_id, SubscriberStatus.BOUNCED,
                                         self.clock.now(), f"provider:{self.provider.name}",
                                         {"detail": status.detail[:500]}, from_provider=True)
        return count

    # -- batches and outcomes ---------------------------------------------------------

    def batch_for(self, issue_id: int, render: tuple[str, str, str], segment: str,
                  rows: list[ClaimedRow], *, test: bool = False) -> Batch:
        """A provider batch for rows of one segment, personal values filled in."""
        subject, html, text = render
        metadata = {"issue_id": str(issue_id)}
        if rows and rows[0].batch_key:
            metadata["batch_key"] = _call_key(rows[0].batch_key, segment)
        return Batch(
            issue_id=issue_id, segment_key=segment, subject=subject, html=html, text=text,
            recipients=self._recipients(rows),
            headers={"List-Id": list_id_value(self.identity.list_name, self.identity.list_id)},
            metadata=metadata, test=test,
        )

    def _recipients(self, rows: list[ClaimedRow]) -> tuple[Recipient, ...]:
        """Personal values and headers of rows: links signed at one instant, greeting."""
        return tuple(map(self._recipient, rows, self.links.personal_urls_of(
            [(r.subscriber_id, r.token_version) for r in rows])))

    def _recipient(self, row: ClaimedRow, urls: tuple[str, str]) -> Recipient:
        unsubscribe, preferences = urls
        values = {"greeting": greeting(row.name), "unsubscribe_url": unsubscribe,
                  "preferences_url": preferences}
        headers = unsubscribe_headers(unsubscribe, self.identity.unsubscribe_mailto)
        # Positional: built per recipient, and a frozen dataclass sets each field by call.
        return Recipient(row.id, row.subscriber_id, row.email, row.name, row.message_id,
                         values, headers)

    def outcome_for(self, row: ClaimedRow, status: RecipientStatus) -> Outcome:
        """Map a provider answer for one row to its next outbox state."""
        if status.outcome in DELIVERED:
            return Outcome(row.id, OutboxStatus.SENT, status.provider_id)  # per recipient
        if status.outcome in PERMANENT:
            return Outcome(row.id, OutboxStatus.FAILED, error=f"{status.outcome}: {status.detail}")
        duplicate = status.outcome is DeliveryOutcome.UNKNOWN
        if row.attempts >= self.max_attempts:
            return Outcome(row.id, OutboxStatus.FAILED, possible_duplicate=duplicate,
                           error=f"gave up after {row.attempts} attempts: {status.detail}")
        return Outcome(row.id, OutboxStatus.QUEUED, error=status.detail,
                       retry_at=self.clock.now() + backoff(row.attempts),
                       possible_duplicate=duplicate)

    # -- after a crash ----------------------------------------------------------------

    def resume_stranded(self, issue_id: int, *, include_live_leases: bool = False) -> int:
        """Decide rows a crash left in `sending`: resend the identical batch where the
        provider deduplicates, else ask the provider, else send again as a possible
        duplicate. Rows of a dead worker on this host count as stranded at once.
        Returns how many rows it decided (recorded).

        The rows are leased to this worker first (one decider per row), and each claim
        and segment is recorded as soon as it is decided. Asking the provider can take
        long (Mailgun and Postmark look each row up by itself), so the lease is renewed
        on the way as a sender renews its claim's (`Leases.hold`). Should another worker
        take rows over all the same, this one stops: that worker decides them, and the
        rows still undecided here are given back, stranded again."""
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            dead = [w for w in box.sending_workers(conn, issue_id)
                    if owner_is_dead(box.worker_of(w))]
            holder, rows = box.take_over_stranded(conn, issue_id, self.worker, now,
                                                  self.lease, include_live_leases, dead)
            renders = outbox_fill.load_renders(conn, issue_id) if rows else {}
        if not rows:
            return 0
        groups = list(_by_claim(rows).values())
        lease = Lease(issue_id, holder, tuple(dict.fromkeys(g[0].batch_key for g in groups)),
                       (rows[0].id, rows[-1].id), now + self.lease, len(rows))
        decided = 0
        for n, group in enumerate(groups):
            try:
                recorded = self._resume_group(issue_id, renders[group[0].segment_key],
                                              group, lease)
            except LeaseLost:
                self.leases.give_back(lease, groups[n:])
                break
            decided += recorded.rows
            if recorded.missed:
                taken_over(lease, recorded.missed, "answers thrown away")
                self.leases.give_back(lease, groups[n + 1:])
                break
        return decided

    def _resume_group(self, issue_id: int, render: tuple[str, str, str],
                      rows: list[ClaimedRow], lease: Lease) -> Recorded:
        """Decide and record the taken-over rows of one claim and segment; LeaseLost,
        before anything is recorded, when another worker has taken rows over."""
        segment = rows[0].segment_key
        if self._can_resend_identical(rows):
            self.leases.hold(lease, 0.0, False)
            outcomes = self._resend_identical(issue_id, render, segment, rows)
        else:
            known = self._reconcile(issue_id, rows, lease)
            outcomes = [self._stranded_outcome(r, s) for r, s in zip(rows, known, strict=True)]
        with write_transaction(self.engine) as conn:
            # Under the batch key the rows kept through the take-over.
            recorded, erased = self._record(conn, rows, outcomes, lease.holder,
                                            rows[0].batch_key)
        lease.unsent -= len(rows)
        self._erase_copies(erased)
        return recorded

    def _can_resend_identical(self, rows: list[ClaimedRow]) -> bool:
        """Whether the provider will still recognise this batch's idempotency key.

        The key's age counts from when its claim was made (`claimed_at`), which take-overs
        and renewals keep: a lease says it only until a taker crashes in turn, as its new
        lease makes the key look younger than it is. Rows claimed before migration 0015
        have no claimed_at and are judged by their lease, as before."""
        ttl = getattr(self.provider, "idempotency_ttl", None)
        if not getattr(self.provider, "idempotent", False) or not rows[0].batch_key or not ttl:
            return False
        claimed_at, lease_until = rows[0].claimed_at, rows[0].lease_until
        if claimed_at is None and lease_until is not None:
            claimed_at = lease_until - self.lease
        return claimed_at is not None and self.clock.now() - claimed_at < ttl

    def _resend_identical(self, issue_id: int, render: tuple[str, str, str], segment: str,
                          rows: list[ClaimedRow]) -> list[Outcome]:
        batch = self.batch_for(issue_id, render, segment, rows)
        try:
            statuses = self.provider.send_batch(batch)
        except ProviderError as exc:
            return [Outcome(r.id, OutboxStatus.QUEUED, possible_duplicate=True,
                            error=f"in flight at a crash; resend failed: {exc}") for r in rows]
        return [self.outcome_for(r, s) for r, s in zip(rows, statuses, strict=True)]

    def _reconcile(self, issue_id: int, rows: list[ClaimedRow], lease: Lease
                   ) -> list[RecipientStatus | None]:
        """What the provider knows of each row, asked `reconcile_chunk` rows at a time
        with the lease renewed (when due) before each chunk."""
        reconcile = getattr(self.provider, "reconcile", None)
        if reconcile is None:
            return [None] * len(rows)
        known: list[RecipientStatus | None] = []
        for start in range(0, len(rows), self.reconcile_chunk):
            self.leases.hold(lease, 0.0, False)
            chunk = rows[start:start + self.reconcile_chunk]
            known += reconcile(issue_id, list(self._recipients(chunk)))
        return known

    def _stranded_outcome(self, row: ClaimedRow, status: RecipientStatus | None) -> Outcome:
        if status is not None and status.outcome in DELIVERED:
            return Outcome(row.id, OutboxStatus.SENT, provider_message_id=status.provider_id)
        if status is not None:  # the provider knows it never got it: safe to send again
            return Outcome(row.id, OutboxStatus.QUEUED, error="not sent before the crash")
        return Outcome(row.id, OutboxStatus.QUEUED, possible_duplicate=True,
                       error="in flight at a crash; sent again, may arrive twice")


def _paused_elsewhere(conn, issue_id: int) -> str | None:
    """Why the issue was paused, if another worker (its error budget) or process paused it
    while this drain ran: no more of it is claimed until `mailer issues resume`, and the
    drain reports the pause with its reason."""
    record = issue_store.issue_by_id(conn, issue_id)
    if record is None or record.status is not IssueStatus.PAUSED:
        return None
    return record.status_note or "paused"


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter: up to 30 s, 60 s, 120 s, ... capped at 1 hour."""
    ceiling = min(30 * 2 ** max(attempts - 1, 0), 3600)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def _call_key(claim_key: str, segment: str) -> str:
    return hashlib.sha256(f"{claim_key}:{segment}".encode()).hexdigest()[:32]


def _by_segment(rows: list[ClaimedRow]) -> dict[str, list[ClaimedRow]]:
    groups: dict[str, list[ClaimedRow]] = {}
    for row in rows:
        groups.setdefault(row.segment_key, []).append(row)
    return groups


def _by_claim(rows: list[ClaimedRow]) -> dict[tuple[str, str], list[ClaimedRow]]:
    groups: dict[tuple[str, str], list[ClaimedRow]] = {}
    for row in rows:
        groups.setdefault((row.batch_key or "", row.segment_key), []).append(row)
    return groups
