"""Confirmation mails to pending subscribers: the ledger entry for one the provider took,
whether a pending address needs one again, and sending a run of them (CLI add/import).

A pending row is committed before its confirmation mail goes out: sending inside the
transaction would hold the database's write lock during a provider call per row. So a mail
that failed is not lost but due: adding or importing the address again sends it, as long
as no confirmation mail with a link that still works went out before. The ledger records
"confirmation_sent" only for a mail the provider accepted, never for an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from mailer.errors import ProviderError
from mailer.models import DeliveryOutcome, RecipientStatus, Subscriber, SubscriberStatus
from mailer.store import ratelimit
from mailer.store import subscribers as subs
from mailer.store.subscribers import ConsentContext
from mailer.subscriber_mail import MailJob, SubscriberMail

CONFIRMATION_SENT = "confirmation_sent"
ACCEPTED = (DeliveryOutcome.SENT, DeliveryOutcome.QUEUED)


def record_sent(engine: Engine, now: datetime, job: MailJob, status: RecipientStatus) -> None:
    """Log a confirmation mail the provider accepted, in a transaction of its own."""
    if job.kind != "confirm" or status.outcome not in ACCEPTED:
        return
    with engine.begin() as conn:
        row = subs.subscriber_row(conn, job.subscriber_id)
        if row is None:
            return
        details = {"request": job.request_id} if job.request_id else {}
        subs.log_event(conn, row, CONFIRMATION_SENT, now, ConsentContext("mail:confirm"),
                       details)


def link_valid_until(conn: Connection, sub: Subscriber, max_age_days: int) -> datetime | None:
    """Until when the last confirmation mail's link works; None if none went out."""
    sent = subs.last_event_at(conn, sub.id, CONFIRMATION_SENT)
    return sent + timedelta(days=max_age_days) if sent is not None else None


def needs_mail_again(conn: Connection, sub: Subscriber, now: datetime,
                     max_age_days: int) -> bool:
    """Whether a known pending subscriber is due a confirmation mail: none went out, or
    the link in the last one has expired."""
    if sub.status is not SubscriberStatus.PENDING:
        return False
    until = link_valid_until(conn, sub, max_age_days)
    return until is None or until <= now


@dataclass
class MailRun:
    """What sending a run of confirmation mails did: who got one, who did not and why."""

    sent: list[str] = field(default_factory=list)
    unsent: list[tuple[str, str]] = field(default_factory=list)


def send_all(engine: Engine, mail: SubscriberMail, jobs: list[MailJob]) -> MailRun:
    """Send confirmation mails in order. A whole-call provider failure stops the run (the
    provider is down or refuses us: the rest would fail alike); every mail known not to
    have gone out gives its rate-limit hit back, so trying again is not counted twice."""
    run = MailRun()
    for index, job in enumerate(jobs):
        try:
            status = mail.send(job)
        except ProviderError as exc:
            untried = jobs[index + 1:]
            release_hits(engine, untried if exc.maybe_accepted else [job, *untried])
            run.unsent.append((job.email, str(exc)))
            run.unsent += [(j.email, "not tried after that failure") for j in untried]
            return run
        if status.outcome in ACCEPTED:
            run.sent.append(job.email)
        else:
            run.unsent.append((job.email, f"{status.outcome.value} {status.detail}".strip()))
    return run


def release_hits(engine: Engine, jobs: list[MailJob]) -> None:
    """Take back the per-address rate-limit hits of mails that never went out."""
    if jobs:
        with engine.begin() as conn:
            ratelimit.release(conn, [j.serial for j in jobs])
