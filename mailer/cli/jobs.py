"""`mailer scheduler run`, `mailer jobs list` and `mailer jobs run`: the scheduled jobs."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime

import click
from sqlalchemy import select

from mailer.app import App
from mailer.cli import CliState, main, pass_state
from mailer.errors import ConfigError
from mailer.jobs import JobSpec, load_jobs
from mailer.store.db import current_revisions, head_revisions
from mailer.store.jobs import RunStatus, latest_heartbeat
from mailer.store.tables import job_state


def specs_of(app: App) -> list[JobSpec]:
    """The job files of this installation, validated."""
    s = app.settings
    return load_jobs(s.path(s.jobs_dir), s.grace_hours)


def require_current_schema(app: App) -> None:
    """Refuse to run jobs on a database that misses migrations."""
    if set(current_revisions(app.engine)) != set(head_revisions(app.engine)):
        raise ConfigError("the database schema is not up to date: run `mailer init` first")


def require_job_settings(app: App) -> None:
    """Refuse to start without what the proof and the newsletter need: the signing key and a
    provider that can be built. Otherwise the scheduler would run for days and fail only at
    the Wednesday proof, and could not even mail the editors about it."""
    app.settings.require_secret_key()
    app.provider  # noqa: B018 - building it is the check


@main.group()
def scheduler() -> None:
    """The process that runs the jobs in jobs/*.toml on time: run it."""


@scheduler.command("run")
@pass_state
def scheduler_run(state: CliState) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C."""
    from mailer.scheduler import SchedulerProcess

    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
    app = state.app()
    require_job_settings(app)
    specs = specs_of(app)
    require_current_schema(app)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # A running send sees the flag between batches: it finishes and records its batch.
        signal.signal(signum, lambda *_: stopping.set())
    SchedulerProcess(app, specs, stopping).serve()


@main.group()
def jobs() -> None:
    """Scheduled jobs: list them, run one now."""


@jobs.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job.")
@pass_state
def jobs_list(state: CliState, as_json: bool) -> None:
    """Show each job's task, trigger and next run in its local time."""
    app = state.app()
    now = app.clock.now()
    last = last_outcomes(app)
    rows = [{**job_row(spec, now), "last_status": last.get(spec.id)} for spec in specs_of(app)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        nxt = row["next_run"] or "disabled"
        click.echo(f"{row['id']:20} {row['task']:14} {nxt:26} {row['trigger']} "
                   f"({row['timezone']}) last: {row['last_status'] or '-'}")
    echo_heartbeat(app)


def job_row(spec: JobSpec, now: datetime) -> dict:
    """A job as `jobs list --json` shows it."""
    fire = spec.next_fire(now) if spec.enabled else None
    return {
        "id": spec.id, "task": spec.task, "trigger": spec.trigger_text,
        "next_run": fire.astimezone(spec.timezone).isoformat() if fire else None,
        "timezone": spec.timezone.key, "enabled": spec.enabled, "options": spec.options,
    }


def last_outcomes(app: App) -> dict[str, str]:
    """Each job's latest outcome, from the job state (empty on a schema without it)."""
    try:
        with app.engine.connect() as conn:
            return {r.job_id: r.last_status for r in conn.execute(select(job_state))
                    if r.last_status}
    except Exception:  # noqa: BLE001 - an old schema only means "nothing to show"
        return {}


def echo_heartbeat(app: App) -> None:
    """One line on the latest scheduler heartbeat, if the schema has the table."""
    try:
        with app.engine.connect() as conn:
            beat = latest_heartbeat(conn)
    except Exception:  # noqa: BLE001 - an old schema only means "no heartbeat to show"
        return
    if beat is None:
        click.echo("Scheduler: no heartbeat recorded yet (is `mailer scheduler run` running?)")
    elif beat.stopped_at:
        click.echo(f"Scheduler: {beat.instance} stopped at {beat.stopped_at.isoformat()}")
    else:
        click.echo(f"Scheduler: {beat.instance} last heartbeat {beat.beat_at.isoformat()}")


@jobs.command("run")
@click.argument("job_id")
@pass_state
def jobs_run(state: CliState, job_id: str) -> None:
    """Run one job now (at MAILER_NOW if set), once per period like the scheduler."""
    from mailer.scheduler import JobRunner

    app = state.app()
    specs = specs_of(app)
    spec = next((s for s in specs if s.id == job_id), None)
    if spec is None:
        raise click.ClickException(
            f"no job {job_id!r}; jobs: {', '.join(s.id for s in specs) or 'none'}")
    require_current_schema(app)
    from mailer.cli.progress import graceful_stop

    # As in the scheduler: SIGTERM or Ctrl-C lets a send record its batches in flight,
    # and the run ends interrupted (resumable), not dead mid-batch.
    with graceful_stop() as stop:
        outcome = JobRunner(app, specs, stop=stop).run(spec, app.clock.now(), manual=True)
    verb = "ran" if outcome.ran else "not run"
    click.echo(f"{spec.id} ({outcome.period_key}): {verb}: {outcome.status}: {outcome.detail}")
    if outcome.status is RunStatus.FAILED:
        raise SystemExit(1)
