"""`mailer worker`: a long-running sender that drains every issue being sent."""

from __future__ import annotations

import signal
import threading

import click

from mailer.cli import CliState, main, pass_state
from mailer.delivery.worker import Worker, WorkerOptions
from mailer.errors import ConfigError
from mailer.store.db import current_revisions, head_revisions


@main.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Sender threads in this process, each claiming its own batches "
                   "(default: setting concurrency).")
@click.option("--once", is_flag=True,
              help="Exit when no issue has work left instead of waiting for new issues.")
@click.option("--idle-max", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True,
              help="Longest sleep in seconds between looks for work when idle.")
@pass_state
def worker(state: CliState, concurrency: int | None, once: bool, idle_max: float) -> None:
    """Send issues marked sending, side by side with other workers (SIGTERM: finish, exit)."""
    if concurrency is not None:
        state.overrides["concurrency"] = concurrency
    app = state.app()
    require_current_schema(app.engine)
    stop = threading.Event()
    options = WorkerOptions(once=once, idle_max=idle_max, idle_min=min(0.2, idle_max))
    runner = Worker(app, options, stop)
    click.echo(f"Worker {runner.worker_id}: {app.settings.concurrency} thread(s), "
               f"provider {app.settings.provider}", err=True)
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        report = runner.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    click.echo(f"Worker {runner.worker_id} stopped: sent {report.sent}, failed {report.failed}, "
               f"retrying {report.retrying}, taken over {report.taken_over}, "
               f"possible duplicates {report.possible_duplicates}, batches {report.batches}, "
               f"issues finished {len(report.finished_issues)}, "
               f"paused {len(report.paused_issues)}")
    if report.lost_to_takeover:
        click.echo(f"  {report.lost_to_takeover} answer(s) came after another worker had taken "
                   "their rows over; that worker decided them")
    if report.paused_issues:
        raise SystemExit(1)


def require_current_schema(engine) -> None:
    """Refuse to send against a database whose schema is older than this code."""
    missing = set(head_revisions(engine)) - set(current_revisions(engine))
    if missing:
        raise ConfigError("database schema is not up to date (missing "
                          f"{', '.join(sorted(missing))}); run `mailer init` first")
