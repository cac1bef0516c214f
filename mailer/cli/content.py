"""`mailer content ...`: load sources into the ledger and look at what is there."""

from __future__ import annotations

import json

import click

from mailer.cli import CliState, main, pass_state
from mailer.dutch import event_when, long_date
from mailer.models import Item, ItemKind, ItemStatus, StoredItem
from mailer.store.issues import announced_item_ids
from mailer.store.items import list_items
from mailer.sync import SourceReport, preview_source, sync_source


@main.group()
def content() -> None:
    """Content sources and the item ledger: sync, list and check."""


@content.command()
@click.option("--source", "only", metavar="NAME", help="Sync only this source.")
@pass_state
def sync(state: CliState, only: str | None) -> None:
    """Fetch every enabled source and upsert its items. Exit 2 if a source failed."""
    app = state.app()
    reports = []
    for name, src in app.sources(only):
        report = sync_source(app.engine, name, src, app.clock)
        click.echo(format_report(report))
        reports.append(report)
    failed = [r for r in reports if not r.ok]
    if failed:
        click.echo(f"{len(failed)} of {len(reports)} sources failed: "
                   f"{', '.join(r.name for r in failed)}", err=True)
        raise SystemExit(2)


def format_report(report: SourceReport) -> str:
    """One line per source, then one indented line per problem and per warning."""
    if not report.ok:
        return f"{report.name}: FAILED: {report.error}"
    if report.not_modified:
        return f"{report.name}: not modified since the last sync"
    lines = [f"{report.name}: fetched {report.fetched}, new {report.new}, "
             f"updated {report.updated}, deleted {report.deleted}, "
             f"duplicates {report.duplicates}, problems {len(report.problems)}"]
    lines += [f"  problem: {p}" for p in report.problems]
    lines += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(lines)


@content.command("list")
@click.option("--new", "only_new", is_flag=True,
              help="Only active items no issue has carried yet.")
@click.option("--upcoming", is_flag=True, help="Only events that have not started yet.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item.")
@pass_state
def list_command(state: CliState, only_new: bool, upcoming: bool, as_json: bool) -> None:
    """List the items in the ledger (deleted ones are left out)."""
    app = state.app()
    now = app.clock.now()
    with app.engine.connect() as conn:
        stored = list_items(conn)
        announced = announced_item_ids(conn, app.settings.list_id, None) if only_new else set()
    if only_new:
        stored = [s for s in stored if s.id not in announced
                  and s.item.status is ItemStatus.ACTIVE]
    if upcoming:
        stored = [s for s in stored if s.item.kind is ItemKind.EVENT
                  and s.item.starts_at is not None and s.item.starts_at >= now]
        stored.sort(key=lambda s: (s.item.starts_at, s.id))
    if as_json:
        click.echo(json.dumps([item_json(s) for s in stored], ensure_ascii=False, indent=2))
        return
    for s in stored:
        click.echo(item_line(s.item))


def item_line(i: Item) -> str:
    """One line per item: kind, when, title (and cancelled)."""
    when = long_date(i.published_at) if i.published_at else (
        event_when(i.starts_at, i.ends_at, i.all_day) if i.starts_at else "")
    flag = " (cancelled)" if i.status is ItemStatus.CANCELLED else ""
    return f"{i.kind.value:9} {when:45} {i.title}{flag}"


def item_json(stored: StoredItem) -> dict:
    """The JSON shape of one item: exactly the keys the docs name."""
    i = stored.item
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return dict(
        id=stored.id, kind=i.kind.value, source=i.source, title=i.title, url=i.url,
        published=iso(i.published_at), starts=iso(i.starts_at), ends=iso(i.ends_at),
        location=i.location, topics=list(i.topics),
    )


@content.command()
@click.argument("source")
@pass_state
def check(state: CliState, source: str) -> None:
    """Fetch and parse SOURCE without storing: what would be imported, and every problem.

    Exit 0 when clean, 1 when entries have problems, 2 when the source cannot be read.
    """
    app = state.app()
    [(name, src)] = app.sources(source)
    items, report = preview_source(app.engine, name, src, app.clock)
    if not report.ok:
        click.echo(f"{name}: FAILED: {report.error}")
        raise SystemExit(2)
    for item in items:
        click.echo(item_line(item))
        click.echo(f"          {item.url}")
    click.echo(f"{name}: {len(items)} items; syncing now would add {report.new}, "
               f"update {report.updated}, delete {report.deleted}, skip {report.duplicates} "
               f"held by other sources")
    for problem in report.problems:
        click.echo(f"  problem: {problem}")
    for warning in report.warnings:
        click.echo(f"  warning: {warning}")
    if report.problems:
        raise SystemExit(1)
