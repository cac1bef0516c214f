"""Storage limitation in the store: set-based statements that erase or thin out personal
data once its retention period is over (AVG art. 5(1)(e)).

Each step is one selection that a dry run counts and a run applies (`Step`), so a dry run
counts exactly what a run would change. Nothing in flight is selected: no subscriber
with a row queued or sending, no issue that is not sent or still has such rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

from mailer.models import IssueStatus, OutboxStatus, SubscriberStatus
from mailer.store.outbox import NO_ADDRESS
from mailer.store.privacy import blank_ledger, erased_address_sql, erased_record, ledger_of
from mailer.store.subscribers import email_hash
from mailer.store.tables import (
    consent_events,
    issues,
    job_runs,
    outbox,
    rate_limit_hits,
    subscribers,
    subscription_requests,
    suppressions,
    webhook_events,
)

LEFT = (SubscriberStatus.UNSUBSCRIBED.value, SubscriberStatus.BOUNCED.value,
        SubscriberStatus.COMPLAINED.value)
IN_FLIGHT = (OutboxStatus.QUEUED.value, OutboxStatus.SENDING.value)
# Ids per statement: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
CHUNK = 500


@dataclass(frozen=True)
class Leaver:
    """A subscriber to erase: id, the address (for its suppression hash and the file
    provider's copies) and the status they left with (the suppression's reason)."""

    id: int
    email: str
    status: str


def _leaving(before: datetime):
    """Who left (unsubscribed, bounced, complained) and was not touched since `before`,
    has no subscribe request waiting (its confirm link must keep working) and no row in
    flight (a batch may be recording its answer)."""
    in_flight = select(outbox.c.subscriber_id).where(
        outbox.c.issue_id.in_(select(issues.c.id).where(
            issues.c.status != IssueStatus.SENT.value)),
        outbox.c.status.in_(IN_FLIGHT))
    return and_(subscribers.c.status.in_(LEFT), subscribers.c.updated_at < before,
                subscribers.c.id.not_in(select(subscription_requests.c.subscriber_id)),
                subscribers.c.id.not_in(in_flight))


def leavers(conn: Connection, before: datetime, *, lock: bool = True) -> list[Leaver]:
    """The subscribers who left before a moment, locked until the transaction ends (FOR
    UPDATE on PostgreSQL: nobody resubscribes them half-way through the erasure)."""
    query = select(subscribers.c.id, subscribers.c.email, subscribers.c.status).where(
        _leaving(before)).order_by(subscribers.c.id)
    rows = conn.execute(query.with_for_update() if lock else query).all()
    return [Leaver(r.id, r.email, r.status) for r in rows]


def erase_leavers(conn: Connection, people: Sequence[Leaver], now: datetime) -> int:
    """Erase subscribers who left, as `privacy.erase` does but a chunk at a time: a hashed
    suppression with the reason they left, the ledger without IPs, user agents and details
    (provider texts there may name the address), placeholders for address and name in the
    subscriber row and the outbox, provider ids and errors gone, and links revoked."""
    for chunk in _chunks(people):
        ids = [p.id for p in chunk]
        _suppress(conn, chunk, now)
        blank_ledger(conn, ids)
        conn.execute(update(outbox).where(outbox.c.subscriber_id.in_(ids)).values(
            email=erased_address_sql(outbox.c.subscriber_id), provider_message_id=None,
            last_error=_skip_reason_only()))
        conn.execute(delete(subscription_requests)
                     .where(subscription_requests.c.subscriber_id.in_(ids)))
        conn.execute(update(subscribers).where(subscribers.c.id.in_(ids))
                     .values(**erased_record(erased_address_sql(subscribers.c.id), now)))
        log_erasures(conn, chunk, now)
    return len(people)


def log_erasures(conn: Connection, chunk: Sequence[Leaver], now: datetime) -> None:
    """One ledger entry per erased subscriber, as `privacy.erase` writes it."""
    conn.execute(insert(consent_events), [dict(
        subscriber_id=p.id, email_hash=email_hash(p.email), event="erase", occurred_at=now,
        source="retention", consent_text_version=None, ip=None, user_agent=None,
        details={"from": p.status}) for p in chunk])


def _suppress(conn: Connection, chunk: Sequence[Leaver], now: datetime) -> None:
    """Suppress the hashes not suppressed yet (a bounce or complaint already is)."""
    wanted = {email_hash(p.email): p.status for p in chunk}
    known = set(conn.execute(select(suppressions.c.email_hash).where(
        suppressions.c.email_hash.in_(list(wanted)))).scalars())
    fresh = [dict(email_hash=h, reason=reason, created_at=now)
             for h, reason in wanted.items() if h not in known]
    if fresh:
        conn.execute(insert(suppressions), fresh)


def _skip_reason_only():
    """Keep our own reason a row was skipped (no personal data); drop providers' texts."""
    return case((outbox.c.status == OutboxStatus.SKIPPED.value, outbox.c.last_error),
                else_=None)


def _chunks(people: Sequence[Leaver]) -> Iterator[Sequence[Leaver]]:
    for start in range(0, len(people), CHUNK):
        yield people[start:start + CHUNK]


def finished_issue_ids(conn: Connection, before: datetime) -> list[int]:
    """Issues sent before a moment with no row in flight: their delivery records may go."""
    busy = exists().where(outbox.c.issue_id == issues.c.id, outbox.c.status.in_(IN_FLIGHT))
    return list(conn.execute(select(issues.c.id).where(
        issues.c.status == IssueStatus.SENT.value, issues.c.sent_at < before, ~busy)
        .order_by(issues.c.id)).scalars())


@dataclass(frozen=True)
class Step:
    """One retention step over one table: the rows it selects and what it does to them
    (delete them, or set `values`). Counting and applying read the one selection, so a dry
    run counts exactly the rows a run changes."""

    table: Table
    where: ColumnElement[bool]
    values: Mapping[str, object] | None = None  # None: delete the selected rows

    def count(self, conn: Connection) -> int:
        """How many rows `apply` would change now."""
        return conn.execute(select(func.count()).select_from(self.table)
                            .where(self.where)).scalar_one()

    def apply(self, conn: Connection) -> int:
        """Delete or update the selected rows; returns how many."""
        statement = (delete(self.table) if self.values is None
                     else update(self.table).values(**self.values))
        return conn.execute(statement.where(self.where)).rowcount or 0


def old_delivery_records(issue_ids: Sequence[int]) -> Step:
    """Address, provider message id and provider error texts of finished issues' outbox
    rows; status, attempts, times and skip reasons stay for the statistics."""
    return Step(outbox, and_(outbox.c.issue_id.in_(issue_ids), outbox.c.email != NO_ADDRESS,
                             outbox.c.status.not_in(IN_FLIGHT)),
                dict(email=NO_ADDRESS, provider_message_id=None,
                     last_error=_skip_reason_only()))


def old_ledger_ips(before: datetime, left_before: datetime) -> Step:
    """IP address and user agent of ledger entries older than `before`, except those of the
    people `erase_leavers` erases for `left_before` in the same run: the erasure blanks
    their entries (selected by `privacy.ledger_of`) and counts them as erased."""
    erased_first = ledger_of(select(subscribers.c.id).where(_leaving(left_before)))
    return Step(consent_events, and_(
        consent_events.c.occurred_at < before,
        consent_events.c.ip.is_not(None) | consent_events.c.user_agent.is_not(None),
        consent_events.c.subscriber_id.is_(None) | ~erased_first),
        dict(ip=None, user_agent=None))


def old_webhook_keys(before: datetime) -> Step:
    """Webhook replay keys received before a moment."""
    return Step(webhook_events, webhook_events.c.received_at < before)


def old_rate_limit_hits(before: datetime) -> Step:
    """Rate-limit hits older than any window still counted (only retention deletes them)."""
    return Step(rate_limit_hits, rate_limit_hits.c.occurred_at < before)


def old_run_details(before: datetime) -> Step:
    """The outcome line of runs that finished before a moment: a proof run's names the
    editors' addresses, a failure's may quote a provider's answer naming a subscriber. The
    row stays: its (job, period key) is what stops a period from running twice."""
    return Step(job_runs, and_(job_runs.c.finished_at < before, job_runs.c.detail.is_not(None)),
                dict(detail=None))
