"""What scheduled jobs do: each task name maps to one function over the existing services."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailer.app import App
from mailer.compose import compose_issue, news_in, period_of
from mailer.dutch import long_date, time_of_day
from mailer.jobs import JobSpec
from mailer.models import Issue, IssueStatus
from mailer.notify import notify_editors
from mailer.retention import apply_retention
from mailer.sending import (
    NothingNewForAnyone,
    SendResult,
    begin_sending,
    require_news,
    send_issue,
    send_test,
    store_issue,
)
from mailer.store import issues as issue_store
from mailer.store.jobs import RunStatus
from mailer.subscriptions import purge_pending
from mailer.sync import SourceReport, sync_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskContext:
    """Everything a task needs: the app, its job, the fire time it runs for, a stop flag."""

    app: App
    spec: JobSpec
    fire_time: datetime
    specs: dict[str, JobSpec]
    stop: threading.Event


@dataclass(frozen=True)
class TaskResult:
    """How a task run ended, in a line an operator can read; `note` says it to the editors
    (Dutch lines) when the run failed for a reason they can act on."""

    status: RunStatus
    detail: str
    issue_id: int | None = None
    note: tuple[str, ...] = ()
    # What failed, as stable keys (e.g. broken sources' names), so a repeat of the same
    # failure is told apart from a new one; empty: the job failed as a whole.
    failures: tuple[str, ...] = ()

    def failure_keys(self) -> list[str]:
        """The keys of what failed in this run, sorted.

        A job that names no parts failed as a whole: one key, so editors hear once when it
        starts failing and once when it recovers. Not the detail, nor a digest of it: a
        detail that differs per run (a request id, a count) would mail them every hour,
        and job_state keeps the keys beyond job_run_detail_days while a detail may quote
        a provider naming an address."""
        return sorted(set(self.failures)) if self.failures else ["job"]


class TaskFailed(Exception):
    """A task could not do its work; the message says why (the run is recorded failed),
    `note` the same for the editors, in Dutch."""

    def __init__(self, message: str, note: tuple[str, ...] = (),
                 failures: tuple[str, ...] = ()):
        super().__init__(message)
        self.note = note
        self.failures = failures


def moment_text(moment: datetime) -> str:
    """'donderdag 3 december 2026 om 9.00 uur', for notes to the editors."""
    return f"{long_date(moment)} om {time_of_day(moment)}"


def newsletter_app(app: App, spec: JobSpec) -> App:
    """The app as a newsletter job sees it: its options may override compose settings."""
    horizon = spec.options.get("event_horizon_weeks")
    return app.with_settings(event_horizon_weeks=horizon) if horizon else app


def new_item_count(issue: Issue) -> int:
    """Magazine items plus events no earlier issue announced: what is new in an issue."""
    return len(news_in(issue, issue.magazine + issue.events))


def enough_content(app: App, moment: datetime, minimum: int) -> tuple[bool, int]:
    """Whether the issue for a moment has at least `minimum` new items (and how many)."""
    with app.engine.connect() as conn:
        record = issue_store.issue_by_period(conn, app.settings.list_id, period_of(moment))
        if issue_store.send_begun(record):
            return True, -1  # sending has begun: it is finished whatever the content
        draft = compose_issue(conn, app.settings, moment)
        count = new_item_count(draft) if draft else 0
    return count >= minimum, count


def run_newsletter(ctx: TaskContext) -> TaskResult:
    """Compose, store and send (or resume) the issue of the fire time's period."""
    app = newsletter_app(ctx.app, ctx.spec)
    moment, minimum = ctx.fire_time, ctx.spec.options["min_items"]
    when = moment_text(moment)
    ok, count = enough_content(app, moment, minimum)
    if not ok:
        return _too_little(app, when, count, minimum)
    issue = store_issue(app, moment)
    if issue is None:
        return _too_little(app, when, 0, minimum)
    even_without_news = ctx.spec.options["even_without_news"]
    # Before the send begins: a week with news for nobody keeps its number unused.
    if reaches_nobody_new(app, issue, even_without_news):
        return _no_news_for_anyone(app, when, issue)
    refused = _begin_sending(app, issue, when, ctx.spec.id)
    if refused is not None:
        return refused
    return _send_outcome(app, issue, send_issue(app, issue, ctx.stop,
                                                even_without_news=even_without_news))


def _begin_sending(app: App, issue: Issue, when: str, job_id: str) -> TaskResult | None:
    """Mark the issue sending (its web version kept with it); the task's result instead
    when it is held, sent or stopped."""
    status = begin_sending(app, issue)
    if status is IssueStatus.HELD:
        notify_editors(app, f"Nieuwsbrief nr. {issue.number} is tegengehouden", [
            f"Nummer {issue.number} ({issue.subject}) is op {when} niet verstuurd, "
            "omdat het is tegengehouden.",
            f"Versturen kan alsnog: mailer issues release {issue.id} en daarna "
            f"mailer jobs run {job_id}.",
        ])
        return TaskResult(RunStatus.HELD, f"issue {issue.id} is held; not sent", issue.id)
    if status is IssueStatus.SENT:
        return TaskResult(RunStatus.DONE, f"issue {issue.id} was already sent", issue.id)
    if status is not IssueStatus.SENDING:
        return TaskResult(RunStatus.SKIPPED, f"issue {issue.id} is {status}; not sent "
                          f"(mailer issues resume {issue.id} continues it)", issue.id)
    return None


def _send_outcome(app: App, issue: Issue, result: SendResult) -> TaskResult:
    """The task's result for a send: done, interrupted or retries pending; failed if paused."""
    if result.drain.paused:
        raise TaskFailed(f"issue {issue.id} paused: {result.drain.paused}; check it, then "
                         f"mailer issues resume {issue.id}")
    c = result.counts
    summary = (f"issue {issue.id} nr. {issue.number} ({issue.period}): sent {c['sent']}, "
               f"failed {c['failed']}, queued {c['queued']}, in flight {c['sending']}")
    if result.finished:
        return TaskResult(RunStatus.DONE, summary + "; finished", issue.id)
    if result.drain.stopped:
        return TaskResult(RunStatus.INTERRUPTED, summary + "; stopped by shutdown", issue.id)
    if app.settings.enqueue_only:  # scale-out: nothing was sent here, so nothing is retried
        return TaskResult(RunStatus.DONE, summary + "; queued for the workers (mailer worker)",
                          issue.id)
    # Retries wait for their backoff; the retry-failed job (or a rerun) finishes them.
    return TaskResult(RunStatus.DONE, summary + "; retries pending", issue.id)


def new_items(count: int) -> str:
    """'1 nieuw onderdeel', '2 nieuwe onderdelen': the editors read Dutch."""
    return "1 nieuw onderdeel" if count == 1 else f"{count} nieuwe onderdelen"


def _too_little(app: App, when: str, count: int, minimum: int) -> TaskResult:
    if count == 0:
        detail, line = "nothing new: no issue", "Er is geen nieuwe inhoud sinds het vorige nummer."
    else:
        detail = f"{count} new item(s), fewer than the minimum of {minimum}: no issue"
        line = (f"Er {'is' if count == 1 else 'zijn'} {new_items(count)}, minder dan het "
                f"minimum van {minimum} dat voor deze nieuwsbrief is ingesteld.")
    notify_editors(app, f"Geen nieuwsbrief op {when}", [
        f"De nieuwsbrief van {when} is niet verstuurd.", line,
        "Voeg inhoud toe en verstuur alsnog met mailer jobs run, of wacht op het volgende nummer.",
    ])
    log.info("newsletter for %s not sent: %s", when, detail)
    return TaskResult(RunStatus.SKIPPED, detail)


def _no_news_for_anyone(app: App, when: str, issue: Issue) -> TaskResult:
    """No issue this period: it holds news, but for no active subscriber's choices."""
    notify_editors(app, f"Geen nieuwsbrief op {when}", [
        f"De nieuwsbrief van {when} is niet verstuurd.",
        "Er is wel nieuwe inhoud, maar niet voor de onderdelen en thema's die de abonnees "
        "hebben gekozen: iedereen zou alleen krijgen wat al in een eerder nummer stond.",
        f"Toch versturen kan met: mailer send --date {issue.issue_date.isoformat()} "
        "--even-without-news",
    ])
    log.info("newsletter for %s not sent: nothing new for any subscriber's segment", when)
    return TaskResult(RunStatus.SKIPPED, "nothing new for any subscriber's segment: no issue",
                      issue.id)


def reaches_nobody_new(app: App, issue: Issue, even_without_news: bool) -> bool:
    """Whether a send of the issue would find nothing new for any active subscriber."""
    try:
        require_news(app, issue, even_without_news=even_without_news)
    except NothingNewForAnyone:
        return True
    return False


def run_proof(ctx: TaskContext) -> TaskResult:
    """Mail the editors a proof of the issue the newsletter job will send next."""
    target = ctx.specs[ctx.spec.options["newsletter_job"]]
    moment = target.next_fire(ctx.fire_time)
    if moment is None:
        raise TaskFailed(f"job {target.id} has no next fire time")
    app = newsletter_app(ctx.app, target)
    when = moment_text(moment)
    minimum = target.options["min_items"]
    ok, count = enough_content(app, moment, minimum)
    issue = store_issue(app, moment) if count != 0 else None
    if issue is None:
        notify_editors(app, f"Geen proef: geen nieuwe inhoud voor {when}", [
            f"Voor de nieuwsbrief van {when} is er nog geen nieuwe inhoud, dus ook geen proef.",
        ])
        return TaskResult(RunStatus.SKIPPED, f"nothing new for {moment.isoformat()}: no proof")
    outcomes = send_test(app, issue, list(app.settings.editors))
    lines = [f"De proef van nummer {issue.number} ({issue.subject}) is naar je onderweg.",
             f"Verzending: {when}. Tegenhouden: mailer issues hold {issue.id}."]
    if not ok:
        lines.append(f"Let op: {new_items(count)}, minder dan het minimum van {minimum}; "
                     "zonder meer inhoud gaat dit nummer niet uit.")
    if reaches_nobody_new(app, issue, target.options["even_without_news"]):
        lines.append("Let op: geen abonnee krijgt hierin iets nieuws (wat bij hun onderdelen "
                     "en thema's past, stond al in een eerder nummer); zo gaat dit nummer "
                     "niet uit.")
    notify_editors(app, f"Proef van nummer {issue.number} verstuurd", lines)
    detail = ", ".join(f"{address}: {outcome}" for address, outcome in outcomes)
    return TaskResult(RunStatus.DONE, f"proof of issue {issue.id} for {moment.isoformat()}: "
                      + detail, issue.id)


def run_sync(ctx: TaskContext) -> TaskResult:
    """Sync every content source into the item ledger; a failed source fails the run."""
    app = ctx.app
    reports = [sync_source(app.engine, name, src, app.clock) for name, src in app.sources()]
    failed = [r for r in reports if not r.ok]
    if failed:
        raise TaskFailed("source(s) failed: " + "; ".join(f"{r.name}: {r.detail}" for r in failed),
                         note=failed_sources_note(failed),
                         failures=tuple(r.name for r in failed))
    return TaskResult(RunStatus.DONE, ", ".join(
        f"{r.name}: new {r.new}, updated {r.updated}, deleted {r.deleted}" for r in reports))


def failed_sources_note(failed: list[SourceReport]) -> tuple[str, ...]:
    """The editors' lines on sources that could not be read: which, why, what it means."""
    return (
        *(f"Bron {r.name} kon niet worden gelezen: {r.error}" for r in failed),
        "De andere bronnen zijn wel bijgewerkt. Wat eerder uit "
        f"{'deze bron' if len(failed) == 1 else 'deze bronnen'} is binnengekomen, blijft "
        "staan en de nieuwsbrief gaat gewoon uit; nieuwe stukken ervan komen er pas in als "
        "de bron weer te lezen is.",
        "Bekijk een bron met: mailer content check " + failed[0].name,
    )


def run_purge(ctx: TaskContext) -> TaskResult:
    """Erase subscribers left unconfirmed longer than `pending_purge_days`."""
    count = purge_pending(ctx.app)
    return TaskResult(RunStatus.DONE, f"purged {count} unconfirmed subscription(s)")


def run_retention(ctx: TaskContext) -> TaskResult:
    """Erase or thin out personal data past its retention period (README, Bewaartermijnen)."""
    return TaskResult(RunStatus.DONE, "; ".join(apply_retention(ctx.app).lines()))


def run_retry_failed(ctx: TaskContext) -> TaskResult:
    """Resume every recent issue still sending: due retries, rows a crash left in flight."""
    app = ctx.app
    since = app.clock.now() - timedelta(hours=ctx.spec.options["max_age_hours"])
    with app.engine.connect() as conn:
        pending = [r for r in issue_store.list_issues(conn, app.settings.list_id)
                   if r.status is IssueStatus.SENDING and r.moment >= since]
        issues = [issue_store.load_issue(conn, r) for r in pending]
    lines = []
    for issue in issues:
        if ctx.stop.is_set():
            return TaskResult(RunStatus.INTERRUPTED, "; ".join(lines) or "stopped")
        result = send_issue(app, issue, ctx.stop)
        lines.append(f"issue {issue.id}: sent {result.drain.sent}, "
                     f"{'finished' if result.finished else 'not finished'}")
    return TaskResult(RunStatus.DONE, "; ".join(lines) or "no issue is being sent")


TASK_FUNCTIONS: dict[str, Callable[[TaskContext], TaskResult]] = {
    "newsletter": run_newsletter,
    "proof": run_proof,
    "sync-content": run_sync,
    "purge-pending": run_purge,
    "retention": run_retention,
    "retry-failed": run_retry_failed,
}
