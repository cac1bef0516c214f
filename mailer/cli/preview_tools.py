"""What `mailer preview` and `mailer lint` print for the editor tools: findings, diffs, shots."""

from __future__ import annotations

import json
import webbrowser
from datetime import date
from pathlib import Path

import click

from mailer.app import App
from mailer.cli import CliState
from mailer.issue_diff import diff_issue, format_diff
from mailer.models import Issue
from mailer.render.lint import Finding
from mailer.render.newsletter import RenderedSegment


def serve_preview(state: CliState, on: date | None, port: int, open_browser: bool) -> None:
    """Run the live preview server until Ctrl+C."""
    from mailer.preview_server import PreviewServer

    try:
        server = PreviewServer(lambda: App(state.settings()), on, state.config, port=port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); "
                                   "choose another port with --port") from None
    click.echo(f"Preview on {server.url} (rebuilds when templates, content or settings "
               "change; Ctrl+C stops)")
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Preview stopped.")


def echo_screenshots(app: App, html: str, folder: Path) -> None:
    """Take the desktop, mobile and images-blocked screenshots and print their paths."""
    from mailer.screenshots import take_screenshots

    chromium = app.settings.chromium
    if not Path(chromium).is_file():
        raise click.ClickException(f"setting chromium: {chromium} not found; install Debian's "
                                   "chromium package or set MAILER_CHROMIUM")
    for name, path in take_screenshots(html, folder, chromium).items():
        click.echo(f"  {name:9} {path}")


def echo_diff(app: App, issue: Issue, sent: RenderedSegment | None = None) -> None:
    """Print what changed since the last sent issue and the last proof; of a sent issue,
    its stored rendering (`sent`) is compared."""
    if sent is not None:
        click.echo("Het verschil gaat over het opgeslagen nummer, zoals het is verstuurd.")
    diffs, notes = diff_issue(app, issue, sent)
    for diff in diffs:
        for line in format_diff(diff):
            click.echo(line)
    for note in notes:
        click.echo(note)


def echo_findings_json(issue: Issue | None, findings: list[Finding]) -> None:
    """The findings as one JSON document for machines; `issue` is null when nothing new."""
    errors = sum(f.level == "error" for f in findings)
    click.echo(json.dumps({
        "issue": {"number": issue.number, "period": issue.period, "subject": issue.subject}
        if issue else None,
        "errors": errors, "warnings": len(findings) - errors,
        "findings": [f.as_dict() for f in findings],
    }, ensure_ascii=False, indent=2))
