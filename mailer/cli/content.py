"""`mailer content ...`: load sources into the ledger and look at what is there."""

from __future__ import annotations

import json

import click

from mailer.cli import CliState, main, pass_state
from mailer.dutch import event_when, long_date
from mailer.models import StoredItem
from mailer.store.items import list_items
from mailer.sync import SourceReport, sync_source


@main.group()
def content() -> None:
    """Content sources and the item ledger."""


@content.command()
@pass_state
def sync(state: CliState) -> None:
    """Fetch every source and upsert its items. Exit 2 if a source failed."""
    app = state.app()
    reports = [sync_source(app.engine, name, src, app.clock) for name, src in app.sources()]
    for report in reports:
        click.echo(format_report(report))
    if not all(r.ok for r in reports):
        raise SystemExit(2)


def format_report(report: SourceReport) -> str:
    """One line per source, then one indented line per problem."""
    if not report.ok:
        return f"{report.name}: FAILED: {report.error}"
    lines = [f"{report.name}: fetched {report.fetched}, new {report.new}, "
             f"updated {report.updated}, deleted {report.deleted}, problems {len(report.problems)}"]
    lines += [f"  problem: {p}" for p in report.problems]
    return "\n".join(lines)


@content.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item.")
@pass_state
def list_command(state: CliState, as_json: bool) -> None:
    """List the items in the ledger."""
    app = state.app()
    with app.engine.connect() as conn:
        stored = list_items(conn)
    if as_json:
        click.echo(json.dumps([item_json(s) for s in stored], ensure_ascii=False, indent=2))
        return
    for s in stored:
        i = s.item
        when = long_date(i.published_at) if i.published_at else (
            event_when(i.starts_at, i.ends_at, i.all_day) if i.starts_at else "")
        click.echo(f"{i.kind.value:9} {when:45} {i.title}")


def item_json(stored: StoredItem) -> dict:
    """The JSON shape of one item."""
    i = stored.item
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return dict(
        id=stored.id, source_id=i.source_id, kind=i.kind.value, source=i.source, title=i.title,
        url=i.url, published=iso(i.published_at), starts=iso(i.starts_at), ends=iso(i.ends_at),
        location=i.location, topics=list(i.topics), status=i.status.value,
    )
