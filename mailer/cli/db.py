"""`mailer init`: create or upgrade the database schema."""

from __future__ import annotations

import click

from mailer.cli import CliState, main, pass_state
from mailer.store.db import current_revisions, upgrade


@main.command()
@pass_state
def init(state: CliState) -> None:
    """Create or upgrade the database schema (safe to run again)."""
    app = state.app()
    applied = upgrade(app.engine)
    where = app.engine.url.render_as_string(hide_password=True)
    if applied:
        click.echo(f"Schema upgraded ({', '.join(applied)}): {where}")
    else:
        click.echo(f"Schema up to date ({', '.join(current_revisions(app.engine))}): {where}")
