"""Leases on the outbox rows a sender thread works on: a claim it sends, or the stranded
rows it took over and decides.

A lease is there to find the rows of a worker that died. A live worker renews it as it
goes (`Leases.hold`), and learns on the way whether another worker has taken rows of it
over after all (`LeaseLost`): that worker decides them now, and this one stops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from mailer.clock import Clock
from mailer.store import outbox as box
from mailer.store.db import write_transaction
from mailer.store.outbox import ClaimedRow

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another worker has taken rows of this claim over: it decides them now."""


@dataclass
class Lease:
    """The lease of the rows a thread is working on, renewed as it goes: a claim it sends,
    or the stranded rows it took over and decides."""

    issue_id: int
    # Who holds its rows (claimed_by): the worker id for a claim (its batch key tells it
    # from the process's other claims), a name of its own for a take-over.
    holder: str
    # The batch keys of its rows: the claim's, or those of the claims the take-over took.
    keys: tuple[str | None, ...]
    id_range: tuple[int, int]  # its first and last outbox id
    until: datetime
    unsent: int  # rows not yet recorded, which the lease has to cover

    def name(self) -> str:
        """How the log names it."""
        if len(self.keys) == 1:
            return f"claim {self.keys[0]}"
        return f"take-over of {len(self.keys)} claims"


def taken_over(lease: Lease, rows: int, how: str) -> LeaseLost:
    """Say once that rows of a lease were taken over by another worker; the exception
    that stops the work on it."""
    log.warning("%s: %d row(s) taken over by another worker after the lease ran out (%s); "
                "it decides them, and this one stops and gives back the rest", lease.name(),
                rows, how)
    return LeaseLost(lease.name())


def reconcile_chunk(lease: timedelta, request_timeout: float) -> int:
    """Rows a reconcile asks the provider about between two looks at the lease: Mailgun
    and Postmark look each row up by itself, so as many look-ups as can all time out
    within the half lease a renewal keeps free, less one to spare (for connecting, the
    renewal itself, a clock running ahead); at least 1. At the defaults (300 s lease,
    30 s request timeout): 4."""
    return max(1, int(lease.total_seconds() / 2 // request_timeout) - 1)


@dataclass(frozen=True)
class Leases:
    """Renews and gives back the leases of one dispatcher's threads."""

    engine: Engine
    clock: Clock
    length: timedelta

    def hold(self, lease: Lease, wait: float, maybe_accepted: bool) -> None:
        """Renew the lease when less than half of it would be left after waiting `wait`
        seconds; LeaseLost when another worker has taken rows of it over. A sender calls
        it before each provider call and retry wait, a take-over before each batch it
        resends and each `reconcile_chunk` rows it looks up.

        A heartbeat, as job queues keep a job in hand (SQS ChangeMessageVisibility,
        Temporal's activity heartbeats): giving a slow claim back would only make another
        worker meet the same retries and 429 waits. So the lease has to cover just the
        next call and its wait, and a renewal is one UPDATE, only when due. Half a lease
        of margin covers the call itself and a taker's clock running ahead of ours. A
        lease that ran out but that nobody took over is still only ours (a take-over
        moves claimed_by in the transaction that sees it run out): renewed too.

        Not renewed after an attempt the provider may have accepted: should the retries
        outlast the lease, a take-over resends under the same idempotency key, which the
        provider deduplicates, and our answer is fenced out. (A claim from before
        migration 0015 has no claimed_at; its lease tells a taker the key's age.)"""
        now = self.clock.now()
        if maybe_accepted or now + timedelta(seconds=wait) + self.length / 2 < lease.until:
            return
        until = now + self.length
        with write_transaction(self.engine) as conn:
            held = box.renew_lease(conn, lease.issue_id, lease.id_range, lease.holder,
                                   lease.keys, until)
        if held < lease.unsent:
            raise taken_over(lease, lease.unsent - held, "found at renewal")
        lease.until = until

    def give_back(self, lease: Lease, groups: Sequence[list[ClaimedRow]]) -> None:
        """Give taken-over rows not yet decided back as they were: their claim's old
        lease, which has run out (so they are stranded again, and a later take-over
        still judges by it the age of a claim from before migration 0015, which has no
        claimed_at); only those this lease still holds."""
        claims: dict[str | None, list[ClaimedRow]] = {}
        for group in groups:
            claims.setdefault(group[0].batch_key, []).extend(group)
        with write_transaction(self.engine) as conn:
            for key, rows in claims.items():
                ids = [r.id for r in rows]
                box.renew_lease(conn, lease.issue_id, (min(ids), max(ids)), lease.holder,
                                (key,), rows[0].lease_until)
