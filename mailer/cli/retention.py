"""`mailer retention [--dry-run]`: apply the retention periods now, or count what would go."""

from __future__ import annotations

import click

from mailer.cli import CliState, main, pass_state
from mailer.retention import apply_retention


@main.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be erased; change nothing.")
@pass_state
def retention(state: CliState, dry_run: bool) -> None:
    """Erase or thin out personal data past its retention period (as the daily job does)."""
    report = apply_retention(state.app(), dry_run=dry_run)
    if dry_run:
        click.echo("Dry run: nothing was changed. A run now would handle:")
    for line in report.lines():
        click.echo(f"  {line}" if dry_run else line)
