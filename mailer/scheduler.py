"""Running jobs exactly once per period: claims, leases, missed runs, the scheduler loop.

Two clocks on purpose: the app's clock (MAILER_NOW in tests and replays) decides *which*
fire time and period a run belongs to; the machine's clock measures leases and heartbeats,
which are about living processes, not about the date being replayed.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent

from mailer.app import App, default_worker_id
from mailer.clock import SystemClock
from mailer.compose import period_of
from mailer.dutch import long_date
from mailer.job_notes import failure_news
from mailer.jobs import JobSpec, build_scheduler, fire_count, latest_fire
from mailer.liveness import owner_is_dead
from mailer.notify import notify_editors
from mailer.store import jobs as job_store
from mailer.store.jobs import FINAL, RunStatus
from mailer.tasks import TASK_FUNCTIONS, TaskContext, TaskFailed, TaskResult, moment_text

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
RENEW_SECONDS = 60.0
EDITOR_FACING = {"newsletter", "proof"}  # tasks whose missed runs the editors hear about
# Why a run was missed, as the editors read it: the scheduler was not running at all, or it
# was running but reached the fire time too late (a long previous run, a sleeping machine).
DOWN = "de planner draaide toen niet"
BEHIND = "de planner liep toen te ver achter (een vorige taak duurde lang of de machine sliep)"


def period_key(spec: JobSpec, fire_time: datetime) -> str:
    """The run key: the ISO week (Amsterdam) for a newsletter, else the fire time in UTC."""
    if spec.task == "newsletter":
        return period_of(fire_time)
    return fire_time.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class RunOutcome:
    """What an attempt at a job run did; `ran` is False when another owner has it."""

    job_id: str
    period_key: str
    fire_time: datetime
    ran: bool
    status: RunStatus | None
    detail: str


class JobRunner:
    """Runs jobs for fire times, once per (job, period key), across processes."""

    def __init__(self, app: App, specs: list[JobSpec], stop: threading.Event | None = None,
                 owner: str | None = None):
        self.app = app
        self.specs = {s.id: s for s in specs}
        self.stop = stop or threading.Event()
        self.owner = owner or default_worker_id()
        self.machine = SystemClock()

    def run(self, spec: JobSpec, fire_time: datetime, *, manual: bool = False) -> RunOutcome:
        """Claim the run of a job for a fire time and, if ours, run its task and record it."""
        key = period_key(spec, fire_time)
        with self.app.engine.begin() as conn:
            claim = job_store.claim_run(
                conn, job_id=spec.id, period_key=key, task=spec.task, fire_time=fire_time,
                owner=self.owner, now=self.machine.now(), lease=LEASE, manual=manual,
                owner_is_dead=owner_is_dead)
        if not claim.won:
            run = claim.run
            log.info("job %s %s: not run here, already %s (by %s)", spec.id, key,
                     run.status, run.owner)
            return RunOutcome(spec.id, key, fire_time, False, run.status,
                              f"already {run.status} by {run.owner}: {run.detail or ''}".strip())
        log.info("job %s: running %s for %s (%s, attempt %d)", spec.id, spec.task,
                 fire_time.isoformat(), key, claim.run.attempts)
        result = self._run_task(spec, fire_time, claim.run.id)
        self._record(spec, fire_time, claim.run.id, result)
        return RunOutcome(spec.id, key, fire_time, True, result.status, result.detail)

    def _run_task(self, spec: JobSpec, fire_time: datetime, run_id: int) -> TaskResult:
        ctx = TaskContext(self.app, spec, fire_time, self.specs, self.stop)
        renewing = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(run_id, renewing), daemon=True,
                                   name=f"lease-{spec.id}")
        renewer.start()
        try:
            return TASK_FUNCTIONS[spec.task](ctx)
        except TaskFailed as exc:  # a failure the task explains itself: no code locations
            log.exception("job %s failed for %s", spec.id, fire_time.isoformat())
            return TaskResult(RunStatus.FAILED, str(exc), note=exc.note, failures=exc.failures)
        except Exception as exc:  # noqa: BLE001 - a failing job must not stop the scheduler
            log.exception("job %s failed for %s", spec.id, fire_time.isoformat())
            return TaskResult(RunStatus.FAILED, failure_summary(exc))
        finally:
            renewing.set()
            renewer.join()

    def _renew(self, run_id: int, done: threading.Event) -> None:
        while not done.wait(RENEW_SECONDS):
            try:
                with self.app.engine.begin() as conn:
                    job_store.renew_lease(conn, run_id, self.owner, self.machine.now() + LEASE)
            except Exception:  # noqa: BLE001 - the next renewal may succeed
                log.exception("could not renew the lease of job run %d", run_id)

    def _record(self, spec: JobSpec, fire_time: datetime, run_id: int, result: TaskResult) -> None:
        now = self.app.clock.now()
        with self.app.engine.begin() as conn:
            before = job_store.last_status(conn, spec.id)
            job_store.finish_run(conn, run_id, self.owner, result.status, self.machine.now(),
                                 result.detail, result.issue_id)
            # Only a final outcome covers the fire time; a failed or interrupted run stays
            # open, so a restart within the grace period tries it again.
            covered = fire_time if result.status in FINAL else fire_time - timedelta(microseconds=1)
            job_store.advance_coverage(conn, spec.id, covered, now, result.status)
            news = failure_news(spec, fire_time, result, before,
                                job_store.reported_failures(conn, spec.id))
            job_store.set_reported_failures(conn, spec.id, news.known)
        log.info("job %s: %s: %s", spec.id, result.status, result.detail)
        if news.note is not None:
            notify_editors(self.app, news.note.subject, news.note.lines)

    def fire(self, spec: JobSpec) -> None:
        """APScheduler's entry point: run the job for its latest fire time up to now."""
        now = self.app.clock.now()
        fire_time = latest_fire(spec, now - spec.grace, now)
        if fire_time is None:
            log.warning("job %s fired, but no fire time lies within its grace period before "
                        "%s; nothing run", spec.id, now.isoformat())
            return
        self.run(spec, fire_time)

    def catch_up(self, now: datetime) -> list[tuple[JobSpec, datetime]]:
        """Find runs missed while no scheduler ran: those to run now, the rest reported."""
        due = []
        for spec in self.specs.values():
            if not spec.enabled:
                continue
            fire_time = self._missed(spec, now)
            if fire_time is not None:
                due.append((spec, fire_time))
        return due

    def _missed(self, spec: JobSpec, now: datetime) -> datetime | None:
        with self.app.engine.begin() as conn:
            covered = job_store.covered_until(conn, spec.id)
            if covered is None:  # first start: nothing can have been missed yet
                job_store.advance_coverage(conn, spec.id, now, now)
                return None
        recent = latest_fire(spec, max(covered, now - spec.grace), now)
        if recent is not None:
            log.warning("job %s: %s run(s) missed while the scheduler was down; running the "
                        "one of %s now", spec.id, missed_count(spec, covered, now),
                        recent.isoformat())
            return recent
        older = latest_fire(spec, covered, now - spec.grace)
        if older is not None:
            self._report_missed(spec, older, missed_count(spec, covered, now), now, DOWN)
        return None

    def report_late(self, spec: JobSpec, fire_time: datetime) -> None:
        """A fire time the running scheduler reached too late (APScheduler dropped it)."""
        self._report_missed(spec, fire_time, 1, self.app.clock.now(), BEHIND)

    def _report_missed(self, spec: JobSpec, fire_time: datetime, count: int | str,
                       now: datetime, reason: str) -> None:
        late = now - fire_time
        detail = (f"missed {count} run(s), the latest at {fire_time.isoformat()}; "
                  f"{late} late is beyond the grace period of {spec.grace}: skipped")
        log.error("job %s: %s", spec.id, detail)
        with self.app.engine.begin() as conn:
            first = job_store.record_missed(
                conn, job_id=spec.id, period_key=period_key(spec, fire_time), task=spec.task,
                fire_time=fire_time, owner=self.owner, now=self.machine.now(), detail=detail)
            job_store.advance_coverage(conn, spec.id, fire_time, now, RunStatus.MISSED)
        if first and spec.task in EDITOR_FACING:
            hours = spec.grace.total_seconds() / 3600
            subject = f"Planner: {spec.id} van {long_date(fire_time)} overgeslagen"
            notify_editors(self.app, subject, [
                f"De taak {spec.id} ({spec.task}) had op {moment_text(fire_time)} moeten "
                f"lopen, maar {reason}.",
                f"Dat is meer dan {hours:g} uur geleden, dus is de taak overgeslagen in plaats "
                "van te laat uitgevoerd.",
                f"Alsnog uitvoeren kan met: mailer jobs run {spec.id}",
            ])


def missed_count(spec: JobSpec, after: datetime, until: datetime, cap: int = 1000) -> str:
    """How many fire times were missed, as text: counting stops at `cap`, so say so."""
    count = fire_count(spec, after, until, cap=cap)
    return f"{count} or more" if count >= cap else str(count)


def failure_summary(exc: BaseException, frames: int = 3) -> str:
    """The exception and the last few frames of its traceback, short enough for a mail."""
    tb = traceback.extract_tb(exc.__traceback__)[-frames:]
    where = " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in reversed(tb))
    return f"{type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")


class SchedulerProcess:
    """The `mailer scheduler run` loop: APScheduler plus heartbeat, until asked to stop."""

    def __init__(self, app: App, specs: list[JobSpec], stopping: threading.Event):
        self.app = app
        self.specs = specs
        self.stopping = stopping
        self.runner = JobRunner(app, specs, stop=stopping)
        self.machine = SystemClock()

    def serve(self) -> None:
        """Catch up on missed runs, run the schedule, beat; on stop, finish and record it."""
        enabled = [s for s in self.specs if s.enabled]
        self._beat(len(enabled))
        scheduler = build_scheduler(self.specs, self.runner.fire)
        scheduler.add_listener(self.on_missed, EVENT_JOB_MISSED)
        for spec, fire_time in self.runner.catch_up(self.app.clock.now()):
            scheduler.add_job(self.runner.run, args=[spec, fire_time], id=f"{spec.id}:catch-up",
                              name=f"{spec.id} (missed run)", misfire_grace_time=None)
        scheduler.start()
        log.info("scheduler %s started with %d job(s): %s", self.runner.owner, len(enabled),
                 ", ".join(s.id for s in enabled) or "none")
        while not self.stopping.wait(self.app.settings.heartbeat_seconds):
            self._beat(len(enabled))
        log.info("stopping: letting running jobs finish their batch")
        scheduler.shutdown(wait=True)
        with self.app.engine.begin() as conn:
            job_store.mark_stopped(conn, self.runner.owner, self.machine.now())
        log.info("scheduler %s stopped", self.runner.owner)

    def on_missed(self, event: JobExecutionEvent) -> None:
        """APScheduler dropped a fire time as later than the grace period: report it too."""
        spec = self.runner.specs.get(event.job_id)
        if spec is None:  # a catch-up job; those have no grace period and are never missed
            return
        try:
            self.runner.report_late(spec, event.scheduled_run_time.astimezone(UTC))
        except Exception:  # noqa: BLE001 - reporting must not take the scheduler down
            log.exception("could not record the missed run of job %s", spec.id)

    def _beat(self, jobs: int) -> None:
        try:
            with self.app.engine.begin() as conn:
                job_store.beat(conn, self.runner.owner, self.machine.now(), jobs)
        except Exception:  # noqa: BLE001 - a database hiccup must not stop the scheduler
            log.exception("could not record the heartbeat")
