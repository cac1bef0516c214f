"""Job runs, job state and scheduler heartbeats: what makes a scheduled run happen once.

A run is claimed by inserting its (job, period) row; the unique key makes the insert the
lock. Whoever loses re-reads the row and may take it over only when the run is over
without a final outcome (failed, interrupted) or its owner is gone (lease expired or the
process is dead), with a compare-and-set update so two takers cannot both win.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mailer.store.tables import job_runs, job_state, scheduler_heartbeats


class RunStatus(StrEnum):
    """Lifecycle of one job run."""

    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"  # nothing to do: no new content, fewer items than the minimum
    HELD = "held"  # the issue is held by the editors
    INTERRUPTED = "interrupted"  # stopped by a shutdown; a later attempt resumes it
    FAILED = "failed"
    MISSED = "missed"  # found at start-up, later than the grace period: never run


# A run with one of these outcomes is over for good: its fire time counts as dealt with.
FINAL = frozenset({RunStatus.DONE, RunStatus.SKIPPED, RunStatus.HELD, RunStatus.MISSED})
# Outcomes an automatic (scheduled) attempt may retry; a manual run may retry all but DONE.
RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.INTERRUPTED})


@dataclass(frozen=True)
class JobRun:
    """A job run row."""

    id: int
    job_id: str
    period_key: str
    task: str
    fire_time: datetime
    status: RunStatus
    manual: bool
    owner: str
    lease_until: datetime
    attempts: int
    issue_id: int | None
    detail: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: whether we own the run now, and the row as it stands."""

    won: bool
    run: JobRun


def _run(row) -> JobRun:
    return JobRun(
        id=row.id, job_id=row.job_id, period_key=row.period_key, task=row.task,
        fire_time=row.fire_time, status=RunStatus(row.status), manual=row.manual,
        owner=row.owner, lease_until=row.lease_until, attempts=row.attempts,
        issue_id=row.issue_id, detail=row.detail, started_at=row.started_at,
        finished_at=row.finished_at,
    )


def run_by_key(conn: Connection, job_id: str, period_key: str) -> JobRun | None:
    """The run of a job for a period key, if any."""
    row = conn.execute(select(job_runs).where(
        job_runs.c.job_id == job_id, job_runs.c.period_key == period_key)).first()
    return _run(row) if row else None


def claim_run(conn: Connection, *, job_id: str, period_key: str, task: str,
              fire_time: datetime, owner: str, now: datetime, lease: timedelta,
              manual: bool, owner_is_dead: Callable[[str], bool]) -> Claim:
    """Insert the run row, or take over an abandoned or retryable one; else report it."""
    values = dict(job_id=job_id, period_key=period_key, task=task, fire_time=fire_time,
                  status=RunStatus.RUNNING.value, manual=manual, owner=owner,
                  lease_until=now + lease, attempts=1, started_at=now)
    try:
        with conn.begin_nested():
            conn.execute(insert(job_runs).values(**values))
        return Claim(True, run_by_key(conn, job_id, period_key))
    except IntegrityError:
        pass
    existing = run_by_key(conn, job_id, period_key)
    if existing is None or not _may_take_over(existing, now, manual, owner_is_dead):
        return Claim(False, existing)
    taken = conn.execute(
        update(job_runs)
        .where(job_runs.c.id == existing.id, job_runs.c.status == existing.status.value,
               job_runs.c.owner == existing.owner, job_runs.c.attempts == existing.attempts)
        .values(status=RunStatus.RUNNING.value, owner=owner, lease_until=now + lease,
                attempts=existing.attempts + 1, manual=manual, started_at=now,
                finished_at=None, fire_time=fire_time)
    ).rowcount
    return Claim(taken == 1, run_by_key(conn, job_id, period_key))


def _may_take_over(run: JobRun, now: datetime, manual: bool,
                   owner_is_dead: Callable[[str], bool]) -> bool:
    if run.status is RunStatus.RUNNING:
        return run.lease_until < now or owner_is_dead(run.owner)
    if run.status is RunStatus.DONE:
        return False
    return manual or run.status in RETRYABLE


def renew_lease(conn: Connection, run_id: int, owner: str, until: datetime) -> bool:
    """Extend a running run's lease; False if someone else has taken it over."""
    return conn.execute(
        update(job_runs).where(job_runs.c.id == run_id, job_runs.c.owner == owner,
                               job_runs.c.status == RunStatus.RUNNING.value)
        .values(lease_until=until)
    ).rowcount == 1


def finish_run(conn: Connection, run_id: int, owner: str, status: RunStatus, now: datetime,
               detail: str | None = None, issue_id: int | None = None) -> None:
    """Record a run's outcome (only while we still own it)."""
    conn.execute(
        update(job_runs).where(job_runs.c.id == run_id, job_runs.c.owner == owner)
        .values(status=status.value, finished_at=now, detail=detail,
                issue_id=func.coalesce(issue_id, job_runs.c.issue_id))
    )


def record_missed(conn: Connection, *, job_id: str, period_key: str, task: str,
                  fire_time: datetime, owner: str, now: datetime, detail: str) -> bool:
    """Record a fire time skipped as too late; False if a run for it already exists."""
    try:
        with conn.begin_nested():
            conn.execute(insert(job_runs).values(
                job_id=job_id, period_key=period_key, task=task, fire_time=fire_time,
                status=RunStatus.MISSED.value, manual=False, owner=owner, lease_until=now,
                attempts=0, detail=detail, started_at=now, finished_at=now))
        return True
    except IntegrityError:
        return False


def covered_until(conn: Connection, job_id: str) -> datetime | None:
    """Up to when every fire time of a job has been dealt with (None: never seen)."""
    return conn.execute(
        select(job_state.c.covered_until).where(job_state.c.job_id == job_id)).scalar()


def last_status(conn: Connection, job_id: str) -> RunStatus | None:
    """The outcome of the job's latest finished run."""
    value = conn.execute(
        select(job_state.c.last_status).where(job_state.c.job_id == job_id)).scalar()
    return RunStatus(value) if value else None


def reported_failures(conn: Connection, job_id: str) -> list[str] | None:
    """What the editors were told is failing in a job since it last worked; None if none."""
    return conn.execute(
        select(job_state.c.failures).where(job_state.c.job_id == job_id)).scalar()


def set_reported_failures(conn: Connection, job_id: str, failures: list[str] | None) -> None:
    """Remember what the editors now know is failing (None: the job works again)."""
    conn.execute(update(job_state).where(job_state.c.job_id == job_id)
                 .values(failures=failures))


def advance_coverage(conn: Connection, job_id: str, until: datetime, now: datetime,
                     status: RunStatus | None = None) -> None:
    """Move a job's coverage forward to `until` (never back) and note the last outcome."""
    current = covered_until(conn, job_id)
    if current is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(job_state).values(
                    job_id=job_id, covered_until=until, updated_at=now,
                    last_status=status.value if status else None))
            return
        except IntegrityError:
            current = covered_until(conn, job_id)
    values: dict = {"updated_at": now, "covered_until": max(current, until)}
    if status is not None:
        values["last_status"] = status.value
    conn.execute(update(job_state).where(job_state.c.job_id == job_id).values(**values))


def beat(conn: Connection, instance: str, now: datetime, jobs: int) -> None:
    """Record that a scheduler instance is alive."""
    done = conn.execute(update(scheduler_heartbeats)
                        .where(scheduler_heartbeats.c.instance == instance)
                        .values(beat_at=now, jobs=jobs, stopped_at=None)).rowcount
    if not done:
        conn.execute(insert(scheduler_heartbeats).values(
            instance=instance, started_at=now, beat_at=now, jobs=jobs))


def mark_stopped(conn: Connection, instance: str, now: datetime) -> None:
    """Record a clean scheduler shutdown."""
    conn.execute(update(scheduler_heartbeats).where(scheduler_heartbeats.c.instance == instance)
                 .values(stopped_at=now, beat_at=now))


@dataclass(frozen=True)
class Heartbeat:
    """A scheduler instance's latest sign of life."""

    instance: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
    jobs: int


def latest_heartbeat(conn: Connection) -> Heartbeat | None:
    """The scheduler instance that beat most recently."""
    row = conn.execute(select(scheduler_heartbeats)
                       .order_by(scheduler_heartbeats.c.beat_at.desc()).limit(1)).first()
    if row is None:
        return None
    return Heartbeat(row.instance, row.started_at, row.beat_at, row.stopped_at, row.jobs)
