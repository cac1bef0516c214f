"""Sending an issue: compose and store it, enqueue, render once per segment, drain."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from mailer.addresses import normalize_email
from mailer.app import App
from mailer.compose import compose_issue
from mailer.delivery.dispatcher import DrainReport, MessageTooLarge
from mailer.errors import MailerError
from mailer.liveness import owner_is_dead
from mailer.message import list_id_value
from mailer.models import Batch, Issue, IssueStatus, OutboxStatus, Preferences
from mailer.render.newsletter import segment_counts
from mailer.store import issue_control, outbox_fill
from mailer.store import issues as issue_store
from mailer.store import outbox as box
from mailer.store import subscribers as subscriber_store
from mailer.store.proofs import record_proof

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendResult:
    """Where an issue stands after a send run."""

    issue: Issue
    enqueued: int
    drain: DrainReport
    counts: dict[str, int]
    finished: bool
    elsewhere: dict[str, int] = field(default_factory=dict)  # rows other live workers hold


def store_issue(app: App, moment: datetime) -> Issue | None:
    """Compose the issue for a moment and store it; None when there is nothing new.

    Two processes composing the same period meet at the unique (list, period) key: the
    loser re-reads the winner's issue instead of making a second one.
    """
    for _ in range(2):
        try:
            with app.engine.begin() as conn:
                issue = compose_issue(conn, app.settings, moment)
                if issue is None:
                    return None
                record = issue_store.issue_by_period(conn, issue.list_id, issue.period)
                if issue_store.send_begun(record):
                    return issue
                issue_id = issue_store.save_issue(conn, issue, app.clock.now())
                return issue_store.load_issue(conn, issue_store.issue_by_id(conn, issue_id))
        except IntegrityError:
            log.info("another process stored the issue for this period first; re-reading")
    raise RuntimeError("could not store the issue after a concurrent insert")


@dataclass(frozen=True)
class SegmentPlan:
    """One segment of the active subscribers: how many, what they get of an issue, and
    why a send skips them (None: it reaches them)."""

    key: str
    subscribers: int
    items: int
    new: int
    skip_reason: str | None


def segment_plans(app: App, issue: Issue, even_without_news: bool = False
                  ) -> list[SegmentPlan]:
    """Per segment of the active subscribers, largest first: whether a send reaches it.

    Counted without rendering; the rendering stores the same counts, from which the send
    marks the rows of skipped segments (`outbox_fill.skip_segments_without_news`)."""
    with app.engine.connect() as conn:
        segments = subscriber_store.active_segments(conn)
    plans = []
    for key, subscribers in segments:
        items, new = segment_counts(issue, Preferences.from_key(key))
        reason = (outbox_fill.NOTHING_FOR_SEGMENT if not items else
                  outbox_fill.NOTHING_NEW_FOR_SEGMENT if not new and not even_without_news
                  else None)
        plans.append(SegmentPlan(key, subscribers, items, new, reason))
    return plans


class NothingNewForAnyone(MailerError):
    """No active subscriber's segment gets anything new in the issue: it is not sent."""


def nothing_new_for_anyone_note(issue: Issue) -> str:
    """What the command line tells editors about an issue with news for nobody, in the
    dry run and the send alike (segments' own reasons: outbox_fill.NOTHING_FOR_SEGMENT and
    outbox_fill.NOTHING_NEW_FOR_SEGMENT)."""
    return (f"Niets nieuws voor de abonnees in nr. {issue.number} ({issue.period}): het wordt "
            "niet verstuurd. Iedereen zou niets krijgen, of alleen wat al in een eerder nummer "
            "stond; `mailer send --even-without-news` verstuurt het toch.")


def require_news(app: App, issue: Issue, *, even_without_news: bool = False
                 ) -> list[SegmentPlan]:
    """The issue's segment plans; NothingNewForAnyone when its send has not begun and no
    segment of the active subscribers gets anything new.

    Then a send would reach nobody, yet use up the issue's number and period. A send that
    has begun goes on as it began (also with the even-without-news choice stored then)."""
    with app.engine.connect() as conn:
        record = issue_store.issue_by_id(conn, issue.id) if issue.id else None
    return _require_news(app, issue, record, even_without_news)


def _require_news(app: App, issue: Issue, record: issue_store.IssueRecord | None,
                  even_without_news: bool) -> list[SegmentPlan]:
    """`require_news` for an issue whose stored record (None: not stored) was read."""
    even_without_news = even_without_news or bool(record and record.even_without_news)
    plans = segment_plans(app, issue, even_without_news)
    begun = issue_store.send_begun(record)
    if plans and not begun and not even_without_news and not any(p.new for p in plans):
        raise NothingNewForAnyone(
            f"nothing new for any subscriber in nr. {issue.number} ({issue.period}): each "
            "segment would get nothing, or only what an earlier issue carried")
    return plans


def enqueue(app: App, issue: Issue, *, even_without_news: bool = False) -> int:
    """Mark the issue sending, add every active subscriber to its outbox, render segments,
    skip the rows of segments with nothing (new) for them.

    The outbox is filled range by range (`fill_outbox`), its segments rendered, then it is
    marked complete: workers drain only complete issues, so none can find a half-filled
    outbox empty and mark the issue sent. A crash part-way leaves the issue sending but
    not enqueued; sending it again (or the scheduler's retry job) adds only the rows
    still missing and renders only the segments still missing.
    """
    now = app.clock.now()
    web_html = web_version_to_keep(app, issue)
    with app.engine.begin() as conn:
        issue_store.set_issue_status(conn, issue.id, IssueStatus.SENDING, now)
        if web_html is not None:  # with the status: the archive never lacks it
            issue_store.keep_web_version(conn, issue.id, web_html, now)
        if even_without_news:
            issue_store.send_even_without_news(conn, issue.id)
    added = fill_outbox(app, issue.id, now)
    with app.engine.connect() as conn:
        missing = outbox_fill.unrendered_segments(conn, issue.id)
    for key in missing:
        segment = app.renderer.render(issue, Preferences.from_key(key))
        with app.engine.begin() as conn:
            outbox_fill.save_render(conn, issue.id, key, segment.subject, segment.html,
                                    segment.text, (segment.item_count, segment.new_count), now)
    with app.engine.begin() as conn:
        outbox_fill.skip_segments_without_news(conn, issue.id, now)
        # Last: a worker that found a row without its rendering, or a row about to be
        # skipped, would fail or send it.
        issue_store.mark_enqueued(conn, issue.id, now)
    return added


def begin_sending(app: App, issue: Issue) -> IssueStatus:
    """Move a draft (or an unfinished send) to sending and keep its public web version in
    the same transaction; returns the status it is in after. Held, paused and sent issues
    are left alone, for the caller to act on.

    One transaction, so no crash can leave an issue sending without the web version the
    archive shows for it (the scheduler's send begins here, a moment before `enqueue`)."""
    web_html = web_version_to_keep(app, issue)
    now = app.clock.now()
    with app.engine.begin() as conn:
        status = issue_control.begin_send(conn, issue.id, now)
        if status is IssueStatus.SENDING and web_html is not None:
            issue_store.keep_web_version(conn, issue.id, web_html, now)
    return status


def web_version_to_keep(app: App, issue: Issue) -> str | None:
    """The public web version to keep with an issue whose sending begins (what the archive
    shows); None when it is kept already (a resumed or repeated send).

    `web_html` renders every section without a personal marker or link, so the kept
    page holds nothing of any subscriber."""
    with app.engine.connect() as conn:
        if issue_store.has_web_version(conn, issue.id):
            return None
    return app.renderer.web_html(issue)


ENQUEUE_RANGE = 50_000  # subscriber ids per transaction: a crash loses at most this much work
ENQUEUE_CONNECTIONS = 2  # PostgreSQL: ranges inserted side by side (one core each)


def fill_outbox(app: App, issue_id: int, now: datetime, range_size: int = ENQUEUE_RANGE,
                connections: int = ENQUEUE_CONNECTIONS) -> int:
    """Add the issue's outbox rows in ranges of subscriber ids, each its own transaction;
    returns how many rows were added.

    On PostgreSQL the ranges go over several connections at once: the insert spends most
    of its time in the server (foreign-key checks, index upkeep), which then works on
    several cores. Ranges are independent and idempotent (ON CONFLICT DO NOTHING), so the
    order they finish in does not matter. SQLite has one writer: one range at a time.
    """
    with app.engine.connect() as conn:
        ranges = outbox_fill.active_subscriber_ranges(conn, range_size)

    def fill(ids: outbox_fill.IdRange) -> int:
        with app.engine.begin() as conn:
            return outbox_fill.enqueue_range(conn, issue_id, app.message_domain, now, ids)

    if app.engine.dialect.name != "postgresql" or connections < 2:
        return sum(map(fill, ranges))
    with ThreadPoolExecutor(max_workers=connections) as pool:
        return sum(pool.map(fill, ranges))


class IssuePaused(MailerError):
    """The issue is paused (error budget, too large, or by an operator): resume it first."""


class IssueHeld(MailerError):
    """The editors hold the issue (`mailer issues hold`): it is not sent until released."""


def check_sendable(app: App, issue: Issue, *, resume: bool = False
                   ) -> issue_store.IssueRecord | None:
    """Raise IssueHeld or IssuePaused when a send of this issue would be refused; else the
    stored issue, if it is stored."""
    with app.engine.connect() as conn:
        record = issue_store.issue_by_id(conn, issue.id) if issue.id else None
    if record and record.status is IssueStatus.HELD:
        raise IssueHeld(f"issue nr. {record.number} is held by the editors; release it with "
                        f"`mailer issues release {record.id}`")
    if record and record.status is IssueStatus.PAUSED and not resume:
        raise IssuePaused(f"issue nr. {record.number} is paused: {record.status_note or '-'}; "
                          f"resume it with `mailer issues resume {record.id}`")
    return record


def send_issue(app: App, issue: Issue, stop: threading.Event | None = None,
               on_progress: Callable[[DrainReport], None] | None = None, *,
               resume: bool = False, even_without_news: bool = False) -> SendResult:
    """Send (or resume) an issue until its outbox is drained; marks it sent when done.

    A paused issue is only sent on with `resume=True` (`mailer issues resume N`). Segments
    with nothing new are skipped unless `even_without_news`; an issue with nothing new
    for anyone is refused (NothingNewForAnyone) before its send begins."""
    record = check_sendable(app, issue, resume=resume)
    if record and record.status is IssueStatus.PAUSED:  # resumed: the cause is fixed, go now
        with app.engine.begin() as conn:
            box.make_waiting_rows_due(conn, issue.id, app.clock.now())
    if not issue_store.send_begun(record):
        _require_news(app, issue, record, even_without_news)
    enqueued = enqueue(app, issue, even_without_news=even_without_news)
    if app.settings.enqueue_only:  # `mailer worker`s drain it (scale-out deployments)
        done = finish_if_done(app, issue.id)
        return SendResult(issue, enqueued, DrainReport(paused=done.paused), done.counts,
                          done.finished)
    dispatcher = app.dispatcher()
    try:
        dispatcher.resume_stranded(issue.id)
        report = dispatcher.drain(issue.id, stop, on_progress)
    except MessageTooLarge as exc:
        with app.engine.begin() as conn:
            issue_store.set_issue_status(conn, issue.id, IssueStatus.PAUSED, app.clock.now(),
                                         note=str(exc))
        raise
    if report.paused:
        with app.engine.connect() as conn:
            return SendResult(issue, enqueued, report, box.status_counts(conn, issue.id), False)
    done = finish_if_done(app, issue.id)
    report.paused = done.paused
    elsewhere = {} if done.finished or done.paused else leased_elsewhere(app, issue.id,
                                                                         dispatcher.worker)
    return SendResult(issue, enqueued, report, done.counts, done.finished, elsewhere)


def leased_elsewhere(app: App, issue_id: int, worker: str) -> dict[str, int]:
    """Rows of the issue in flight at other live workers, per worker: another process
    (a second `mailer send`, a `mailer worker`) is sending it, and this run left them be."""
    with app.engine.connect() as conn:
        leases = box.live_leases(conn, issue_id, app.clock.now())
    return {w: n for w, n in leases.items() if w != worker and not owner_is_dead(w)}


@dataclass(frozen=True)
class Finish:
    """Where an issue stands once a drain is over: its outbox counts, whether it is now
    sent, and why it was paused instead (its rows are done, but none was delivered)."""

    counts: dict[str, int]
    finished: bool
    paused: str | None = None


def finish_if_done(app: App, issue_id: int) -> Finish:
    """Mark an issue sent when no row is queued or sending and any was delivered.

    One whose rows are done but all failed reached nobody: it is paused, not sent, as the
    error budget pauses a large list whose first recipients fail (a small list never
    fills its window), so the editors see it in `mailer issues status` and the send exits
    with an error. An issue paused meanwhile (another worker's error budget ran out) stays
    paused: the operator has to look at it, also when its last rows are done."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        counts = box.status_counts(conn, issue_id)
        open_rows = counts[OutboxStatus.QUEUED.value] + counts[OutboxStatus.SENDING.value]
        if open_rows:
            return Finish(counts, False)
        failed = counts[OutboxStatus.FAILED.value]
        if failed and not counts[OutboxStatus.SENT.value]:
            note = nothing_delivered_note(issue_id, failed)
            paused = issue_store.pause_if_sending(conn, issue_id, note)
            return Finish(counts, False, note if paused else None)
        return Finish(counts, issue_store.mark_sent(conn, issue_id, now))


def nothing_delivered_note(issue_id: int, failed: int) -> str:
    """Why an issue whose rows all failed was paused, and the way on."""
    return (f"paused: nothing was delivered, all {failed} row(s) failed (their errors: "
            f"`mailer issues show {issue_id}`); once the cause is fixed, "
            f"`mailer issues retry-failed {issue_id}` sends them again")


def send_test(app: App, issue: Issue, addresses: list[str],
              preferences: Preferences | None = None) -> list[tuple[str, str]]:
    """Send the issue to a few addresses with "[TEST]" in the subject, outside the outbox.

    A test send never counts as the issue's send: only a proof record (what was in it,
    for `mailer preview --diff`) is stored. Returns (address, outcome) per address.
    """
    from mailer.preview import sample_recipient

    segment = app.renderer.render(issue, preferences or Preferences())
    # A Message-ID of its own per proof: Gmail drops a message whose id the mailbox
    # already holds, so a fixed one hid every proof after an editor's first.
    proof = secrets.token_hex(8)
    # A distinct outbox_id per proof too, as for the editors' notes: the file provider
    # names its files by it, and every proof numbered from 0 overwrote the one before.
    base = int(proof, 16) % 10**8
    recipients = tuple(
        replace(sample_recipient(app), email=normalize_email(address), outbox_id=base + i,
                message_id=f"<weerbaarnl.proof.{issue.number}.{proof}.{i}@{app.message_domain}>")
        for i, address in enumerate(addresses)
    )
    batch = Batch(issue_id=issue.id or 0, segment_key=segment.segment_key,
                  subject=segment.subject, html=segment.html, text=segment.text,
                  recipients=recipients, test=True,
                  headers={"List-Id": list_id_value(app.settings.list_name, app.settings.list_id)})
    statuses = app.provider.send_batch(batch)
    with app.engine.begin() as conn:
        record_proof(conn, issue, segment_key=segment.segment_key, html=segment.html,
                     recipients=len(recipients), now=app.clock.now())
    return [(r.email, s.outcome.value) for r, s in zip(recipients, statuses, strict=True)]
