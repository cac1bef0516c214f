"""The outbox: one row per (issue, subscriber), the single truth of who got what. Filling
it (rows, segment renderings, skips) is `mailer.store.outbox_fill`'s; this module claims,
records and reports on its rows.

Rows only move forward: queued -> sending -> sent | failed | skipped (a failed attempt that
may be retried goes back to queued with a later `next_attempt_at`). Claiming uses
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so many workers can drain one issue; on SQLite
the same statement runs inside a BEGIN IMMEDIATE transaction, which serialises claimers.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from operator import attrgetter
from typing import NamedTuple

from sqlalchemy import (
    Connection,
    Integer,
    String,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from mailer.models import IssueStatus, OutboxStatus, SubscriberStatus
from mailer.store.tables import issues, outbox, subscribers


# ClaimedRow and Outcome are immutable named tuples rather than frozen dataclasses: one of
# each is built per recipient, and a frozen dataclass sets each field through
# object.__setattr__ (0.6-0.75 us per object, against 0.2 us).
class ClaimedRow(NamedTuple):
    """An outbox row claimed for sending, with what personalisation needs."""

    id: int
    subscriber_id: int
    email: str
    name: str
    token_version: int
    segment_key: str
    message_id: str
    attempts: int
    batch_key: str | None = None
    lease_until: datetime | None = None
    # When the claim was made (before its key was first used): read by a take-over only,
    # so only `rows_with_subscribers` fills it in, not `claim_batch` (one more value per
    # recipient). NULL for rows claimed before migration 0015.
    claimed_at: datetime | None = None


class Outcome(NamedTuple):
    """The new state of one row after an attempt."""

    outbox_id: int
    status: OutboxStatus
    provider_message_id: str | None = None
    error: str | None = None
    retry_at: datetime | None = None  # with status QUEUED: try again from then
    possible_duplicate: bool = False


# What an outbox row holds instead of an address once retention has thinned out its
# delivery record (`store.retention`): nothing can be sent to it again.
NO_ADDRESS = ""

# What personalisation needs of a row, in ClaimedRow's order.
_PERSONAL_COLUMNS = (outbox.c.id, outbox.c.subscriber_id, outbox.c.email, subscribers.c.name,
                     subscribers.c.token_version, outbox.c.segment_key, outbox.c.message_id,
                     outbox.c.attempts)


# The statements of the send loop are built once per dialect, with their values bound at
# execution: building them per batch cost ~0.4 ms, and an id list given as a literal is
# wrapped id by id. With small batches (a whole body per recipient) that was ~15 us per
# recipient.
_NOW = bindparam("b_now", type_=outbox.c.updated_at.type)

_CLAIM_SELECT = (
    select(*_PERSONAL_COLUMNS, subscribers.c.status)
    .join(subscribers, subscribers.c.id == outbox.c.subscriber_id)
    .where(outbox.c.issue_id == bindparam("b_issue"),
           outbox.c.status == OutboxStatus.QUEUED.value,
           or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= _NOW),
           # Paused by another worker (its error budget ran out) or an operator: stop here.
           exists().where(issues.c.id == bindparam("b_issue"),
                          issues.c.status == IssueStatus.SENDING.value))
    .order_by(outbox.c.id).limit(bindparam("b_size", type_=Integer))
    .with_for_update(of=outbox, skip_locked=True)  # locks only the outbox rows
)


def _id_listed(dialect: str):
    """`outbox.id` is one of the ids bound as the single parameter `ids`.

    One parameter for the whole list, not one per id (an expanding IN): SQLAlchemy renders
    and processes each of a thousand parameters, twice per batch, ~2 us per recipient.
    PostgreSQL takes an integer array (= ANY); SQLite has no arrays, so the list travels
    as a JSON array text that json_each unpacks. `_id_list` gives the matching value."""
    if dialect == "postgresql":
        return outbox.c.id == any_(bindparam("ids", type_=ARRAY(Integer)))
    unpacked = select(literal_column("value")).select_from(func.json_each(bindparam("ids")))
    return outbox.c.id.in_(unpacked.scalar_subquery())


def _id_list(dialect: str, ids: Sequence[int]) -> list[int] | str:
    """The value of the `ids` parameter of `_id_listed` for this dialect."""
    if dialect == "postgresql":
        return list(ids)
    return "[" + ",".join(map(str, map(int, ids))) + "]"  # ints: the text is valid JSON


@cache
def _claim_update(dialect: str):
    """The UPDATE that claims the rows a claim SELECT found."""
    return update(outbox).where(_id_listed(dialect)).values(
        status=OutboxStatus.SENDING.value, claimed_by=bindparam("b_worker"),
        lease_until=bindparam("b_lease", type_=outbox.c.lease_until.type),
        attempts=outbox.c.attempts + 1, updated_at=_NOW, batch_key=bindparam("b_key"),
        claimed_at=_NOW,
    )


def _outcome_rows(dialect: str):
    """The rows of one outcome group as a derived table u(id, pid): each outbox id with
    the provider's message id for it, bound as one value (two on PostgreSQL) made by
    `_outcome_values`.

    Per-row provider ids (Brevo, Postmark answer one per recipient) thus go in the same
    UPDATE as the rest, instead of a following executemany of one UPDATE per row, which
    SQLAlchemy and SQLite cost ~3 us per recipient. PostgreSQL unnests two arrays;
    SQLite unpacks a JSON object {id: pid} whose keys and values json_each gives as they
    are (a JSON array of [id, pid] pairs needed two json_extract calls per row, which cost
    the UPDATE ~0.4 us per recipient more)."""
    if dialect == "postgresql":
        return func.unnest(bindparam("ids", type_=ARRAY(Integer)),
                           bindparam("pids", type_=ARRAY(Text))
                           ).table_valued("id", "pid").render_derived(name="u")
    pairs = func.json_each(bindparam("ids")).table_valued("key", "value")
    return select(cast(pairs.c.key, Integer).label("id"), pairs.c.value.label("pid")
                  ).select_from(pairs).subquery("u")


def _outcome_values(dialect: str, outcomes: Sequence[Outcome]) -> dict[str, object]:
    """The parameters of `_outcome_rows` for these outcomes."""
    if dialect == "postgresql":
        return {"ids": [o.outbox_id for o in outcomes],
                "pids": [o.provider_message_id for o in outcomes]}
    return {"ids": json.dumps({o.outbox_id: o.provider_message_id for o in outcomes})}


# Only a row in flight takes an answer: sent, failed and skipped are final (only an
# operator's `requeue_failed` reopens a failed row), and a queued row belongs to no
# call. Thus no late write, fenced or not, moves a row backwards.
_IN_FLIGHT = outbox.c.status == OutboxStatus.SENDING.value


def _claim_fence(worker: str, batch_key: str) -> list:
    """The row is still held by this claim: its holder (claimed_by) and batch key.

    The worker id alone (host:pid) is shared by every sender thread of a process: a thread
    whose lease ran out, whose rows were taken over, decided, queued again and then
    claimed by another thread of the same process, would still pass it. The batch key
    tells the claims apart; a take-over keeps the key (the identical batch can then be
    resent under the provider's idempotency key), and holds the rows under a name of its
    own (`_taker_name`), even when its process is the one whose stale thread it fences
    out. IS NOT DISTINCT FROM: rows claimed without a key."""
    return [outbox.c.claimed_by == bindparam(worker),
            outbox.c.batch_key.is_not_distinct_from(bindparam(batch_key, type_=String))]


@cache
def _outcome_update(dialect: str, fenced: bool, duplicate: bool, per_row_ids: bool):
    """The UPDATE that writes one group of outcomes (eight shapes per dialect, each built
    once). With `per_row_ids` each row gets its own provider message id; else all get
    `b_provider_id`, the cheaper statement (SendGrid and Mailgun: one id per call)."""
    rows = _outcome_rows(dialect) if per_row_ids else None
    values = dict(
        status=bindparam("b_status"), last_error=bindparam("b_error"),
        next_attempt_at=bindparam("b_retry", type_=outbox.c.next_attempt_at.type),
        sent_at=bindparam("b_sent", type_=outbox.c.sent_at.type), claimed_by=None,
        lease_until=None, updated_at=_NOW,
        provider_message_id=bindparam("b_provider_id") if rows is None else rows.c.pid)
    if duplicate:
        values["possible_duplicate"] = True
    where = [_id_listed(dialect) if rows is None else outbox.c.id == rows.c.id,
             _IN_FLIGHT]
    if fenced:
        where += _claim_fence("b_fence", "b_claim")
    return update(outbox).where(*where).values(**values)


def claim_batch(conn: Connection, issue_id: int, worker: str, size: int, now: datetime,
                lease: timedelta, batch_key: str | None = None) -> list[ClaimedRow]:
    """Claim up to `size` due queued rows of an issue for this worker, under a lease.

    `batch_key` names the claim on its rows, so a resumed send can rebuild the very
    batches a crash left in flight. One SELECT reads the rows with what personalisation
    needs (locking only the outbox rows), one UPDATE claims them; the claimed values are
    filled in here rather than read back, as the UPDATE just wrote them.

    Rows of subscribers who are no longer active (unsubscribed, bounced or erased since
    the issue was queued: a paused issue resumed later, a send rerun after a crash) are
    marked skipped with the reason instead, in the same transaction."""
    while True:
        rows = conn.execute(_CLAIM_SELECT,
                            {"b_issue": issue_id, "b_now": now, "b_size": size}).all()
        if not rows:
            return []
        active = [r for r in rows if r[-1] == SubscriberStatus.ACTIVE.value]
        if len(active) < len(rows):
            _skip_gone(conn, [r for r in rows if r[-1] != SubscriberStatus.ACTIVE.value], now)
        if active:
            return _claim(conn, active, worker, now, lease, batch_key)


def _skip_gone(conn: Connection, rows: Sequence, now: datetime) -> None:
    """Mark skipped the rows of subscribers who left after the issue was queued."""
    for status in {r[-1] for r in rows}:
        ids = [r[0] for r in rows if r[-1] == status]
        reason = f"niet verstuurd: abonnee is sinds het klaarzetten {_LEFT_AS.get(status, status)}"
        conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(
            status=OutboxStatus.SKIPPED.value, last_error=reason, updated_at=now))


# Why a queued row was not sent after all, by the subscriber's new status (read by editors).
_LEFT_AS = {SubscriberStatus.PENDING.value: "weer onbevestigd",
            SubscriberStatus.UNSUBSCRIBED.value: "afgemeld",
            SubscriberStatus.BOUNCED.value: "onbestelbaar (bounce)",
            SubscriberStatus.COMPLAINED.value: "gemeld als spam",
            SubscriberStatus.ERASED.value: "gewist"}


def _claim(conn: Connection, rows: Sequence, worker: str, now: datetime, lease: timedelta,
           batch_key: str | None) -> list[ClaimedRow]:
    """Lease rows the claim SELECT found to this worker; the rows as claimed."""
    lease_until = (now + lease).astimezone(UTC)  # as the store gives it back
    dialect = conn.dialect.name
    conn.execute(_claim_update(dialect), {
        "ids": _id_list(dialect, [r[0] for r in rows]), "b_worker": worker,
        "b_lease": lease_until, "b_now": now, "b_key": batch_key})
    return [ClaimedRow(row_id, subscriber_id, email, name, token_version, segment_key,
                       message_id, attempts + 1, batch_key, lease_until)
            for (row_id, subscriber_id, email, name, token_version, segment_key, message_id,
                 attempts, _subscriber_status) in rows]


def release_unsent(conn: Connection, ids: Sequence[int], worker: str, now: datetime,
                   batch_key: str | None) -> int:
    """Give claimed rows that never reached the provider back to the queue as they were
    before the claim (the attempt not counted, no lease); returns how many.

    Only rows still held by this claim (worker and batch key) change: one whose lease
    ran out meanwhile may be another worker's now, or another claim's of this process."""
    dialect = conn.dialect.name
    result = conn.execute(
        update(outbox).where(_id_listed(dialect), _IN_FLIGHT,
                             *_claim_fence("b_worker", "b_claim"))
        .values(status=OutboxStatus.QUEUED.value, claimed_by=None, lease_until=None,
                attempts=outbox.c.attempts - 1, updated_at=now),
        {"ids": _id_list(dialect, ids), "b_worker": worker, "b_claim": batch_key})
    return result.rowcount or 0


@cache
def _lease_update(dialect: str):
    """The UPDATE that sets the lease of rows in flight still held by this worker under
    one of the batch keys bound as `b_claims`, between two ids: found through the work
    index (issue, status, id), so no id list is built per renewal. The keys travel as one
    parameter, as ids do (`_id_listed`); coalesce: rows claimed without a key."""
    key = func.coalesce(outbox.c.batch_key, "")
    if dialect == "postgresql":
        keyed = key == any_(bindparam("b_claims", type_=ARRAY(String)))
    else:
        keyed = key.in_(select(literal_column("value")).select_from(
            func.json_each(bindparam("b_claims"))).scalar_subquery())
    return (update(outbox)
            .where(outbox.c.issue_id == bindparam("b_issue"), _IN_FLIGHT,
                   outbox.c.id.between(bindparam("b_first"), bindparam("b_last")),
                   outbox.c.claimed_by == bindparam("b_worker"), keyed)
            .values(lease_until=bindparam("b_lease", type_=outbox.c.lease_until.type)))


def renew_lease(conn: Connection, issue_id: int, id_range: tuple[int, int], worker: str,
                batch_keys: Sequence[str | None], until: datetime | None) -> int:
    """Set the lease of rows to `until`, for those still in `sending` and still held by
    `worker` (a claim's worker id, or a take-over's holder) under one of `batch_keys` (a
    claim's key, or the keys of the claims a take-over took) between the first and last
    id; returns how many. Fewer than it has in flight: another worker has taken rows of it
    over, after its lease ran out.

    A lease set back to one that ran out gives taken-over rows back, stranded again."""
    first, last = id_range
    keys = [k or "" for k in batch_keys]
    dialect = conn.dialect.name
    return conn.execute(_lease_update(dialect), {
        "b_issue": issue_id, "b_first": first, "b_last": last, "b_worker": worker,
        "b_claims": keys if dialect == "postgresql" else json.dumps(keys),
        "b_lease": until and until.astimezone(UTC)}).rowcount or 0


def rows_with_subscribers(conn: Connection, ids: Sequence[int]) -> list[ClaimedRow]:
    """Outbox rows joined with what personalisation needs, in id order."""
    rows = conn.execute(
        select(*_PERSONAL_COLUMNS, outbox.c.batch_key, outbox.c.lease_until,
               outbox.c.claimed_at)
        .join(subscribers, subscribers.c.id == outbox.c.subscriber_id)
        .where(outbox.c.id.in_(list(ids))).order_by(outbox.c.id)
    )
    return [ClaimedRow(*r) for r in rows]


# A take-over holds its rows as its worker id plus this mark and a random suffix, a name
# no other claim or take-over shares; `worker_of` gives the worker id back.
_TAKER_MARK = "#"
_TAKER_SUFFIX = re.compile(r"#[0-9a-f]{8}$")


def _taker_name(worker: str) -> str:
    """A claimed_by value for one take-over by this worker, unlike any other."""
    return f"{worker}{_TAKER_MARK}{secrets.token_hex(4)}"


def worker_of(claimed_by: str) -> str:
    """The worker id (host:pid) in a claimed_by value: a claim's, or a take-over's."""
    return _TAKER_SUFFIX.sub("", claimed_by)


class TakeOver(NamedTuple):
    """Stranded rows a worker took over, and the name it holds them under (claimed_by),
    with which it records, renews and gives them back."""

    holder: str
    rows: list[ClaimedRow]


def _stranded(issue_id: int, now: datetime, include_live_leases: bool,
              dead_workers: Sequence[str]):
    query = select(outbox.c.id).where(
        outbox.c.issue_id == issue_id, outbox.c.status == OutboxStatus.SENDING.value)
    if not include_live_leases:
        query = query.where(or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now,
                                outbox.c.claimed_by.in_(list(dead_workers))))
    return query


def take_over_stranded(conn: Connection, issue_id: int, worker: str, now: datetime,
                       lease: timedelta, include_live_leases: bool = False,
                       dead_workers: Sequence[str] = ()) -> TakeOver:
    """Lease stranded rows to this worker, so two workers never decide the same row.
    `dead_workers` are claimed_by values (`sending_workers`) whose rows count as
    stranded even under a live lease.

    Rows another worker is taking over right now are skipped (SKIP LOCKED), and rows it
    took over a moment ago carry its fresh lease and no longer match. The rows come back
    as they were (batch key, old lease, when the claim was made), so the identical batch
    can still be rebuilt. The rows keep their batch key, under which the taker records
    (see `_claim_fence`), and `claimed_at`: the key's age, which the new lease does not
    tell once a taker has crashed too (`Dispatcher._can_resend_identical`). The taker
    holds them under a name of its own (`TakeOver.holder`), never its bare worker id: a
    stale sender thread of the same process must not pass the fence.
    """
    query = _stranded(issue_id, now, include_live_leases, dead_workers).order_by(outbox.c.id)
    ids = list(conn.execute(query.with_for_update(skip_locked=True)).scalars())
    holder = _taker_name(worker)
    if not ids:
        return TakeOver(holder, [])
    # Read before re-leasing: the old lease tells when a claim made before migration 0015
    # (no claimed_at) was made.
    rows = rows_with_subscribers(conn, ids)
    conn.execute(
        update(outbox).where(outbox.c.id.in_(ids))
        .values(claimed_by=holder, lease_until=now + lease, updated_at=now)
    )
    return TakeOver(holder, rows)


# What rows with the same new state share: (status, error, retry_at, possible_duplicate),
# taken by one C-level call per row rather than a tuple built in Python.
_new_state = attrgetter("status", "error", "retry_at", "possible_duplicate")


@dataclass
class Recorded:
    """What `record_outcomes` wrote: rows changed per new status, how many of those it
    flagged possible duplicates, how many answers it threw away (rows no longer held by
    the claim, or no longer in `sending`: another worker took them over), and the ids of
    rows whose subscriber was erased meanwhile."""

    by_status: Counter[OutboxStatus] = field(default_factory=Counter)
    possible_duplicates: int = 0
    missed: int = 0
    erased: list[int] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """How many rows changed."""
        return sum(self.by_status.values())


def record_outcomes(conn: Connection, outcomes: Sequence[Outcome], now: datetime,
                    worker: str | None = None, batch_key: str | None = None) -> Recorded:
    """Write the result of an attempt for many rows in a few set-based statements; returns
    what it changed (`Recorded`), counted per statement from its row count.

    Rows with the same new state (usually a whole batch: sent) are one UPDATE, which
    also gives each row its own provider message id where they differ. Only rows in
    `sending` change. With `worker` (a claim's worker id, or a take-over's holder), only
    rows still held by that claim (worker and `batch_key`) change: a sender that outlived
    its lease must not overwrite the row another worker, or another claim of its own
    process, holds since (provider ids included). The answers for the other rows are
    thrown away, and counted only as `missed`: whoever holds those rows now decides and
    counts them.

    What was written for an erased subscriber (a refusal, the file provider's path) may
    name the address that `privacy.erase` has just cleaned out: the caller, who knows the
    address, cleans those rows again. The check follows the UPDATE, whose row locks an
    erasure under way waits for (or it for the erasure), so one of the two sees the other.
    """
    groups: dict[tuple, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(_new_state(o), []).append(o)
    dialect = conn.dialect.name
    recorded = Recorded()
    for (status, error, retry_at, duplicate), group in groups.items():
        values = {"b_status": status.value, "b_error": error, "b_retry": retry_at,
                  "b_sent": now if status is OutboxStatus.SENT else None, "b_now": now,
                  "b_fence": worker, "b_claim": batch_key}
        provider_ids = {o.provider_message_id for o in group}
        per_row_ids = len(provider_ids) > 1
        if per_row_ids:
            values.update(_outcome_values(dialect, group))
        else:
            values["b_provider_id"] = provider_ids.pop()
            values["ids"] = _id_list(dialect, [o.outbox_id for o in group])
        changed = conn.execute(_outcome_update(dialect, worker is not None, duplicate,
                                               per_row_ids), values).rowcount or 0
        recorded.by_status[status] += changed
        recorded.possible_duplicates += changed if duplicate else 0
        recorded.missed += len(group) - changed
        if changed:
            recorded.erased += conn.execute(_erased_among(dialect, per_row_ids),
                                            values).scalars()
    return recorded


@cache
def _erased_among(dialect: str, per_row_ids: bool):
    """The ids of the rows of one outcome group (bound as for `_outcome_update`) whose
    subscriber is erased: one query per group, by primary keys."""
    query = select(outbox.c.id).join(subscribers, subscribers.c.id == outbox.c.subscriber_id)
    if per_row_ids:
        rows = _outcome_rows(dialect)
        query = query.join(rows, outbox.c.id == rows.c.id)
    else:
        query = query.where(_id_listed(dialect))
    return query.where(subscribers.c.status == SubscriberStatus.ERASED.value)


def status_counts(conn: Connection, issue_id: int) -> dict[str, int]:
    """Rows per status for an issue, every status present (zero if none)."""
    counts = {s.value: 0 for s in OutboxStatus}
    rows = conn.execute(
        select(outbox.c.status, func.count()).where(outbox.c.issue_id == issue_id)
        .group_by(outbox.c.status)
    )
    counts.update({status: n for status, n in rows})
    counts["possible_duplicates"] = conn.execute(
        select(func.count()).where(and_(outbox.c.issue_id == issue_id,
                                        outbox.c.possible_duplicate.is_(True)))
    ).scalar() or 0
    return counts


def sending_workers(conn: Connection, issue_id: int) -> list[str]:
    """Who holds rows of an issue in `sending`: claimed_by values, a take-over's with its
    suffix (`worker_of` gives the worker id)."""
    return [w for w in conn.execute(
        select(outbox.c.claimed_by).distinct()
        .where(outbox.c.issue_id == issue_id, outbox.c.status == OutboxStatus.SENDING.value)
    ).scalars() if w]


def live_leases(conn: Connection, issue_id: int, now: datetime) -> dict[str, int]:
    """Rows of an issue in `sending` under a lease that has not run out, per worker id
    (a worker's claims and take-overs together)."""
    per_worker: Counter[str] = Counter()
    for holder, n in conn.execute(
        select(outbox.c.claimed_by, func.count())
        .where(outbox.c.issue_id == issue_id, outbox.c.status == OutboxStatus.SENDING.value,
               outbox.c.claimed_by.is_not(None), outbox.c.lease_until >= now)
        .group_by(outbox.c.claimed_by)
    ):
        per_worker[worker_of(holder)] += n
    return dict(per_worker)


def make_waiting_rows_due(conn: Connection, issue_id: int, now: datetime) -> int:
    """Queued rows of an issue that wait for a retry become due now (an operator resumes
    a paused issue after fixing the cause); returns how many."""
    result = conn.execute(
        update(outbox)
        .where(outbox.c.issue_id == issue_id, outbox.c.status == OutboxStatus.QUEUED.value,
               outbox.c.next_attempt_at.is_not(None))
        .values(next_attempt_at=None, updated_at=now)
    )
    return result.rowcount or 0


def requeue_failed(conn: Connection, issue_id: int, now: datetime) -> int:
    """Give failed rows of an issue another chance (fresh attempts), only for subscribers
    who are still active (never a bounced or unsubscribed one) and rows that still hold
    an address (retention takes it from old issues' rows); returns how many."""
    active = select(subscribers.c.id).where(
        subscribers.c.status == SubscriberStatus.ACTIVE.value)
    result = conn.execute(
        update(outbox)
        .where(outbox.c.issue_id == issue_id, outbox.c.status == OutboxStatus.FAILED.value,
               outbox.c.subscriber_id.in_(active), outbox.c.email != NO_ADDRESS)
        .values(status=OutboxStatus.QUEUED.value, attempts=0, next_attempt_at=None,
                updated_at=now)
    )
    return result.rowcount or 0
