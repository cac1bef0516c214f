"""`mailer demo`: the whole pipeline on embedded defaults, in a folder of its own."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import click

from mailer.app import App
from mailer.cli import CliState, main, pass_state
from mailer.cli.issue import echo_result
from mailer.clock import FixedClock, parse_instant
from mailer.compose import issue_moment
from mailer.preview import build_preview, write_preview
from mailer.sending import send_issue, store_issue
from mailer.settings import with_overrides
from mailer.store.db import upgrade
from mailer.subscriber_import import import_confirmed, parse_csv
from mailer.sync import sync_source


@main.command()
@click.option("--dir", "folder", type=click.Path(path_type=Path, file_okay=False),
              help="Where the demo's database, outbox and preview go (default: a new temp dir).")
@pass_state
def demo(state: CliState, folder: Path | None) -> None:
    """Init, sync sample content, add sample subscribers, compose, preview and send."""
    folder = (folder or Path(tempfile.mkdtemp(prefix="weerbaarnl-demo-"))).resolve()
    app = demo_app(state, folder)
    click.echo(f"Demo in {folder} (clock: {app.clock.now().isoformat()})")
    upgrade(app.engine)
    for name, source in app.sources():
        report = sync_source(app.engine, name, source, app.clock)
        click.echo(f"Content {name}: {report.fetched} items, {report.new} new"
                   + (f", FAILED: {report.error}" if report.error else ""))
    added = add_sample_subscribers(app)
    click.echo(f"Subscribers: {added} added from subscribers/sample.csv")
    issue = store_issue(app, issue_moment(app.settings, app.clock, None))
    if issue is None:
        click.echo("Nothing new to send: no issue composed.")
        return
    paths = write_preview(build_preview(app, issue), folder / "preview")
    click.echo(f"Issue nr. {issue.number} ({issue.period}): {issue.subject}")
    click.echo(f"  {len(issue.magazine)} magazine items, {len(issue.events)} events")
    click.echo(f"  preview: {paths['html']}")
    result = send_issue(app, issue)
    echo_result(result)
    click.echo(f"  messages: {app.settings.path(app.settings.outbox_dir) / f'issue-{issue.id}'}")


def demo_app(state: CliState, folder: Path) -> App:
    """Settings pointed at the demo folder, a throwaway key, and the demo date's clock."""
    settings = state.settings()
    clock_at = settings.now or f"{settings.demo_date}T{settings.send_time}"
    settings = with_overrides(
        settings,
        database_url=f"sqlite:///{folder / 'mailer.db'}",
        outbox_dir=folder / "outbox",
        preview_dir=folder / "preview",
        provider="file",
        secret_key=settings.secret_key or os.environ.get("MAILER_SECRET_KEY")
        or secrets.token_urlsafe(32),
    )
    return App(settings, FixedClock(parse_instant(clock_at)))


def add_sample_subscribers(app: App) -> int:
    """Import subscribers/sample.csv as confirmed (fictitious example.org people)."""
    rows, rejected = parse_csv(app.settings.root / "subscribers" / "sample.csv",
                               set(app.settings.themes))
    for r in rejected:
        click.echo(f"  sample.csv line {r.line}: {r.reason}", err=True)
    with app.engine.begin() as conn:
        report = import_confirmed(conn, rows, source="import:subscribers/sample.csv",
                                  note="demo sample data", now=app.clock.now())
    return report.added
