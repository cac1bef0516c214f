"""A sending worker: drains every issue in status `sending`, side by side with other workers.

Any number of workers on any number of machines share one PostgreSQL database. Each
claims batches with `FOR UPDATE SKIP LOCKED` under a lease (see `store.outbox`), so no two
workers hold the same row, and renews that lease while it sends a claim; a worker that
dies leaves its rows in `sending` until the lease expires, and then whichever worker looks
first takes them over and decides them by the dispatcher's in-flight rules (reconcile
with the provider, else send again as a possible duplicate). Idle workers sleep with a
growing back-off on an Event, so a stop request (SIGTERM) wakes them at once; a busy
worker stops after the batch in flight is recorded.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from mailer.app import App, default_worker_id
from mailer.delivery.dispatcher import Dispatcher, MessageTooLarge
from mailer.delivery.drain_run import DrainReport, RowCounts
from mailer.models import IssueStatus
from mailer.sending import finish_if_done
from mailer.store import issues as issue_store
from mailer.store import workload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs: whether to exit when done, how long to sleep when idle."""

    once: bool = False  # exit when no issue has work left (rows waiting for a retry excepted)
    idle_min: float = 0.2  # seconds; doubled on every idle round up to idle_max
    idle_max: float = 30.0


@dataclass
class WorkerReport(RowCounts):
    """What a worker did over its life, summed over its threads."""

    taken_over: int = 0  # stranded rows this worker took over and decided
    paused_issues: set[int] = field(default_factory=set)
    finished_issues: set[int] = field(default_factory=set)

    def add(self, drain: DrainReport, taken_over: int) -> None:
        """Count one drain."""
        self.add_counts(drain)
        self.taken_over += taken_over


@dataclass
class IdleBackoff:
    """Sleep times that double while there is nothing to do, and reset when work appears."""

    low: float
    high: float
    current: float = 0.0

    def reset(self) -> None:
        """Work was found: the next idle sleep starts short again."""
        self.current = 0.0

    def next(self, until_wake: float | None = None) -> float:
        """The next sleep in seconds, cut short when known work falls due sooner."""
        self.current = min(self.high, max(self.low, self.current * 2))
        if until_wake is not None:
            return max(self.low, min(self.current, until_wake))
        return self.current


class Worker:
    """Drains every issue being sent, batch by batch, until stopped.

    Sending concurrency lives in the dispatcher (setting `concurrency`: threads that each
    claim their own batches); a worker is one process with one worker id, `host:pid`.
    """

    def __init__(self, app: App, options: WorkerOptions, stop: threading.Event | None = None,
                 worker_id: str | None = None):
        self.app = app
        self.options = options
        self.stop = stop or threading.Event()
        self.worker_id = worker_id or default_worker_id()
        self.report = WorkerReport()

    def run(self) -> WorkerReport:
        """Work until stopped (or, with `once`, until nothing is left)."""
        dispatcher = self.app.dispatcher(worker=self.worker_id)
        idle = IdleBackoff(self.options.idle_min, self.options.idle_max)
        while not self.stop.is_set():
            try:
                if self.work_pass(dispatcher):
                    idle.reset()
                    continue
                open_work, wake = self._outlook()
            except DBAPIError as exc:  # the database restarted or failed over: wait, retry
                log.warning("worker %s: database error, backing off: %s", self.worker_id, exc)
                self.stop.wait(idle.next())
                continue
            if self.options.once and not open_work:
                break
            self.stop.wait(idle.next(wake))
        return self.report

    def work_pass(self, dispatcher: Dispatcher) -> bool:
        """One round over the issues being sent; True when anything was claimed or decided."""
        with self.app.engine.connect() as conn:
            issue_ids = workload.sending_issue_ids(conn)
        did_work = False
        for issue_id in issue_ids:
            if self.stop.is_set():
                break
            try:
                taken_over = dispatcher.resume_stranded(issue_id)
                drained = dispatcher.drain(issue_id, self.stop)
            except MessageTooLarge as exc:  # the issue can never go out as rendered
                self._pause(issue_id, str(exc))
                continue
            self.report.add(drained, taken_over)
            did_work |= bool(taken_over or drained.batches)
            if drained.paused:  # the error budget ran out; the dispatcher paused the issue
                log.warning("worker %s: issue %d paused: %s", self.worker_id, issue_id,
                            drained.paused)
                self.report.paused_issues.add(issue_id)
            elif not drained.stopped:
                self._finish(issue_id)
        return did_work

    def _finish(self, issue_id: int) -> None:
        """Mark a drained issue sent, or paused when none of its rows was delivered."""
        done = finish_if_done(self.app, issue_id)
        if done.paused:
            log.warning("worker %s: issue %d paused: %s", self.worker_id, issue_id,
                        done.paused)
            self.report.paused_issues.add(issue_id)
        elif done.finished:
            if issue_id not in self.report.finished_issues:
                log.info("worker %s: issue %d is fully sent", self.worker_id, issue_id)
            self.report.finished_issues.add(issue_id)

    def _pause(self, issue_id: int, reason: str) -> None:
        log.error("worker %s: issue %d paused: %s", self.worker_id, issue_id, reason)
        with self.app.engine.begin() as conn:
            issue_store.set_issue_status(conn, issue_id, IssueStatus.PAUSED, self.app.clock.now(),
                                         note=reason)
        self.report.paused_issues.add(issue_id)

    def _outlook(self) -> tuple[bool, float | None]:
        """(is any work open, seconds until a retry or lease falls due) for the idle sleep."""
        now = self.app.clock.now()
        with self.app.engine.connect() as conn:
            issue_ids = workload.sending_issue_ids(conn)
            open_work = workload.has_open_work(conn, issue_ids, now)
            wake = workload.next_wake(conn, issue_ids)
        return open_work, _seconds_until(wake, now)


def _seconds_until(moment: datetime | None, now: datetime) -> float | None:
    if moment is None:
        return None
    # A little past the moment, so the lease has surely expired when we look again.
    return max(0.0, (moment - now).total_seconds()) + 0.05
