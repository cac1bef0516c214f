"""`mailer preview`, `mailer lint` and `mailer send`: the editor's and operator's verbs."""

from __future__ import annotations

import webbrowser
from datetime import date, datetime
from pathlib import Path

import click
from sqlalchemy import func, select

from mailer.app import App
from mailer.cli import CliState, main, pass_state
from mailer.compose import compose_issue, issue_moment
from mailer.models import Issue, IssueStatus, SubscriberStatus
from mailer.preview import build_preview, write_preview
from mailer.render.lint import Finding, has_errors
from mailer.sending import SendResult, send_issue, store_issue
from mailer.store.tables import subscribers

date_option = click.option(
    "--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Compose the issue for this date (YYYY-MM-DD) at the send time; default now.")


def _day(on: datetime | None) -> date | None:
    return on.date() if on else None


def compose_for(app: App, on: date | None) -> Issue | None:
    """Compose the issue for a date without storing anything."""
    with app.engine.connect() as conn:
        return compose_issue(conn, app.settings, issue_moment(app.settings, app.clock, on))


def nothing_new(app: App, on: date | None) -> None:
    moment = issue_moment(app.settings, app.clock, on)
    click.echo(f"Nothing new to send for {moment.date().isoformat()}: no issue composed.")


@main.command()
@date_option
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for issue.html, issue.txt and issue.eml (default: preview/).")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
@pass_state
def preview(state: CliState, on: datetime | None, out: Path | None, open_browser: bool) -> None:
    """Write the upcoming issue as HTML, text and .eml, and lint it."""
    app = state.app()
    issue = compose_for(app, _day(on))
    if issue is None:
        return nothing_new(app, _day(on))
    result = build_preview(app, issue)
    paths = write_preview(result, out or app.settings.path(app.settings.preview_dir))
    click.echo(f"Issue nr. {issue.number} ({issue.period}): {issue.subject}")
    for kind, path in paths.items():
        click.echo(f"  {kind:5} {path}")
    echo_findings(result.findings)
    if open_browser:
        webbrowser.open(paths["html"].resolve().as_uri())


@main.command()
@date_option
@pass_state
def lint(state: CliState, on: datetime | None) -> None:
    """Check the upcoming issue; exit 1 if there are errors."""
    app = state.app()
    issue = compose_for(app, _day(on))
    if issue is None:
        return nothing_new(app, _day(on))
    findings = build_preview(app, issue).findings
    echo_findings(findings)
    if has_errors(findings):
        raise SystemExit(1)


def echo_findings(findings: list[Finding]) -> None:
    """Print each finding on its own line, then a summary."""
    for f in findings:
        where = f" [{f.element}]" if f.element else ""
        click.echo(f"  {f.level.upper():7} {f.code}: {f.message}{where}")
    errors = sum(f.level == "error" for f in findings)
    click.echo(f"Lint: {errors} error(s), {len(findings) - errors} warning(s).")


@main.command()
@date_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def send(state: CliState, on: datetime | None, yes: bool) -> None:
    """Compose and send the issue to every active subscriber (resumes a partial send)."""
    app = state.app()
    issue = store_issue(app, issue_moment(app.settings, app.clock, _day(on)))
    if issue is None:
        return nothing_new(app, _day(on))
    if not yes:
        click.confirm(f"Send nr. {issue.number} '{issue.subject}' to {active_count(app)} "
                      "active subscribers?", abort=True)
    echo_result(send_issue(app, issue))


def active_count(app: App) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).where(
            subscribers.c.status == SubscriberStatus.ACTIVE.value)).scalar() or 0


def echo_result(result: SendResult) -> None:
    """Summarise a send run."""
    c = result.counts
    state = IssueStatus.SENT.value if result.finished else "not finished (run again to resume)"
    click.echo(f"Issue nr. {result.issue.number} ({result.issue.period}): {state}")
    click.echo(f"  sent {c['sent']}, failed {c['failed']}, skipped {c['skipped']}, "
               f"queued {c['queued']}, in flight {c['sending']}, "
               f"possible duplicates {c['possible_duplicates']}")
