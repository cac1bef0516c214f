"""`mailer subscribers ...`: add, import, export, list, show, forget, purge, revoke."""

from __future__ import annotations

import csv
import json
import sys
from datetime import timedelta
from pathlib import Path

import click
from sqlalchemy import select

from mailer.addresses import InvalidAddress, normalize_email
from mailer.app import App
from mailer.cli import CliState, main, pass_state
from mailer.clock import local
from mailer.confirmations import link_valid_until, needs_mail_again, send_all
from mailer.models import SECTIONS, Preferences, SubscriberStatus
from mailer.store import privacy, subscription_requests
from mailer.store import subscribers as subs
from mailer.store.tables import subscribers as subscribers_table
from mailer.subscriber_import import CsvRow, ImportReport, import_rows, parse_csv
from mailer.subscriptions import consent_context, forget, mail_job, purge_pending

EXPORT_FIELDS = ["email", "name", "status", "sections", "themes", "source", "created_at",
                 "confirmed_at", "unsubscribed_at"]


@main.group()
def subscribers() -> None:
    """Subscribers: add, import, export, list, show, forget, purge, revoke-links."""


def _address(email: str) -> str:
    try:
        return normalize_email(email)
    except InvalidAddress as exc:
        raise click.BadParameter(f"{email!r} is not a valid address: {exc}") from None


def _consent_options(confirmed: bool, note: str | None) -> None:
    if confirmed and not (note and note.strip()):
        raise click.UsageError("--confirmed needs --consent-note TEXT saying how consent "
                               "was given (it goes into the consent ledger)")


def _send_mails(app: App, report: ImportReport, command: str) -> None:
    """Send the report's confirmation mails; name every pending address that got none
    and how to send it (exit 1): nothing is lost, as running the command again sends it."""
    run = send_all(app.engine, app.subscriber_mail, report.mails)
    for address in run.sent:
        click.echo(f"  confirmation mail to {address}: sent")
    s = app.settings
    unsent = run.unsent + [(address, f"mail limit reached ({s.confirm_limit_per_address} per "
                                     f"{s.rate_limit_window_minutes} minutes)")
                           for address in report.limited]
    if not unsent:
        return
    click.echo(f"No confirmation mail went to {len(unsent)} pending address(es); they stay "
               "pending:", err=True)
    for address, why in unsent:
        click.echo(f"  {address}: {why}", err=True)
    raise click.ClickException(f"{len(unsent)} confirmation mail(s) not sent: run the same "
                               f"command again (`{command}`) once the provider works or the "
                               "limit allows; it sends them and nothing else twice")


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name (first word used in the greeting).")
@click.option("--sections", default=",".join(SECTIONS), show_default=True,
              help="Comma-separated sections: magazine, agenda.")
@click.option("--themes", default="", help="Comma-separated theme/audience slugs (empty = all).")
@click.option("--confirmed", is_flag=True, help="Add as active (consent given elsewhere).")
@click.option("--consent-note", help="How consent was given; required with --confirmed.")
@pass_state
def add(state: CliState, email: str, name: str, sections: str, themes: str, confirmed: bool,
        consent_note: str | None) -> None:
    """Add one subscriber: pending with a confirmation mail, or --confirmed.

    Adding a pending address again sends its confirmation mail again if none went out or
    its link expired. Exit 1 if the address is already a subscriber or the mail was not
    sent (run the command again to send it)."""
    _consent_options(confirmed, consent_note)
    app = state.app()
    address = _address(email)
    prefs = _preferences(app, sections, themes)
    context = consent_context(app.settings, "admin:cli")
    with app.engine.begin() as conn:
        report = import_rows(conn, [CsvRow(0, address, name, prefs)], confirmed=confirmed,
                             context=context, note=consent_note, now=app.clock.now(),
                             **_confirmations(app))
    if report.refused:
        raise click.ClickException(f"{address} is suppressed (erased, bounced or complained); "
                                   "not added")
    if report.existing and not (report.mails or report.limited):
        raise click.ClickException(_already_there(app, address))
    if report.existing:
        click.echo(f"{address} is pending; sending its confirmation mail again.")
    else:
        click.echo(f"Added {address} as {'active' if confirmed else 'pending'}.")
    _send_mails(app, report, f"mailer subscribers add {address}")


def _confirmations(app: App) -> dict:
    """import_rows' arguments for confirmation mails: one per new pending subscriber, and
    one again for a known pending one whose earlier mail failed or whose link expired."""
    def mail_again(conn, sub) -> bool:
        return needs_mail_again(conn, sub, app.clock.now(), app.settings.confirm_max_age_days)

    return {"mail_for": lambda conn, sub: mail_job(app, conn, "confirm", sub),
            "mail_again": mail_again}


def _already_there(app: App, address: str) -> str:
    """Why `add` adds nobody: the address is active, or pending with a working link."""
    message = f"{address} is already a subscriber"
    with app.engine.connect() as conn:
        sub = subs.find_by_email(conn, address)
        until = link_valid_until(conn, sub, app.settings.confirm_max_age_days)
    if sub.status is SubscriberStatus.PENDING and until is not None:
        sent = until - timedelta(days=app.settings.confirm_max_age_days)
        message += (f" (pending: its confirmation mail went out on {_stamp(sent)}; its link "
                    f"works until {_stamp(until)}, then adding it again sends a new one)")
    return f"{message}; see `mailer subscribers show {address}`"


def _stamp(moment) -> str:
    return local(moment).strftime("%Y-%m-%d %H:%M")


def _preferences(app: App, sections: str, themes: str) -> Preferences:
    chosen = {s.strip() for s in sections.split(",") if s.strip()}
    picked = {t.strip() for t in themes.split(",") if t.strip()}
    if not chosen or chosen - set(SECTIONS):
        raise click.BadParameter(f"sections must be among {', '.join(SECTIONS)}",
                                 param_hint="--sections")
    if unknown := picked - set(app.settings.themes):
        raise click.BadParameter(f"unknown theme(s) {', '.join(sorted(unknown))}; known: "
                                 f"{', '.join(app.settings.themes)}", param_hint="--themes")
    return Preferences(frozenset(chosen), frozenset(picked))


@subscribers.command("import")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--confirmed", is_flag=True, help="Import as active (consent given elsewhere).")
@click.option("--consent-note", help="How consent was given; required with --confirmed.")
@pass_state
def import_(state: CliState, path: Path, confirmed: bool, consent_note: str | None) -> None:
    """Import a CSV (email, name, sections, themes, audience); pending rows get a mail.

    A `status` column (as `subscribers export` writes) is honoured: unsubscribed, bounced
    and complained lines are not imported, nor pending ones with --confirmed. A pending
    address already present gets its confirmation mail again if none went out or its link
    expired. Exit 1 if a confirmation mail was not sent (the addresses are listed; run the
    same import again to send them), else exit 2 if any line was rejected."""
    _consent_options(confirmed, consent_note)
    app = state.app()
    rows, rejected = parse_csv(path, set(app.settings.themes))
    context = consent_context(app.settings, f"import:{path.name}")
    with app.engine.begin() as conn:
        report = import_rows(conn, rows, confirmed=confirmed, context=context,
                             note=consent_note, now=app.clock.now(), **_confirmations(app))
    for problem in sorted(rejected + report.refused, key=lambda r: r.line):
        click.echo(f"{path.name} line {problem.line}: {problem.reason}", err=True)
    click.echo(f"Imported {path.name}: {report.added} added "
               f"({'active' if confirmed else 'pending'}), {report.merged} duplicate row(s) "
               f"merged, {report.existing} already present, "
               f"{len(rejected) + len(report.refused)} rejected.")
    if report.again:
        click.echo(f"{report.again} pending address(es) get their confirmation mail again "
                   "(the earlier one failed or its link expired).")
    _send_mails(app, report, f"mailer subscribers import {path}")
    if rejected or report.refused:
        sys.exit(2)


def _records(app: App, status: str | None) -> list[dict]:
    """Subscribers as exported, each with the subscribe request waiting for them (None
    if there is none; a JSON export shows it, a CSV export stays importable)."""
    query = select(subscribers_table).order_by(subscribers_table.c.id)
    if status:
        query = query.where(subscribers_table.c.status == status)
    else:
        query = query.where(subscribers_table.c.status != SubscriberStatus.ERASED.value)
    with app.engine.connect() as conn:
        rows = conn.execute(query).all()
        waiting = subscription_requests.pending_requests(conn, [r.id for r in rows])
    return [_record(r, waiting.get(r.id)) for r in rows]


def _record(row, waiting: subscription_requests.PendingRequest | None) -> dict:
    """One subscriber as exported; a date not reached yet is None (JSON null, CSV empty)."""
    stamp = lambda v: v.isoformat() if v else None  # noqa: E731
    return {"email": row.email, "name": row.name, "status": row.status,
            "sections": list(row.sections), "themes": list(row.themes), "source": row.source,
            "created_at": stamp(row.created_at), "confirmed_at": stamp(row.confirmed_at),
            "unsubscribed_at": stamp(row.unsubscribed_at),
            "pending_request": waiting.as_dict() if waiting else None}


status_option = click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]),
                             help="Only subscribers with this status (default: all but erased).")


@subscribers.command("export")
@status_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True, help="CSV (importable again) or JSON (with waiting requests).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file (default: standard output).")
@pass_state
def export(state: CliState, status: str | None, fmt: str, out: Path | None) -> None:
    """Export subscribers as CSV (importable again) or JSON."""
    records = _records(state.app(), status)
    handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        if fmt == "json":
            json.dump(records, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for r in records:
                writer.writerow({**r, "sections": ";".join(r["sections"]),
                                 "themes": ";".join(r["themes"])})
    finally:
        if out:
            handle.close()
    if out:
        click.echo(f"Exported {len(records)} subscriber(s) to {out}", err=True)


@subscribers.command("list")
@status_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def list_(state: CliState, status: str | None, as_json: bool) -> None:
    """List subscribers: address, status, sections and themes."""
    records = _records(state.app(), status)
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    for r in records:
        themes = ",".join(r["themes"]) or "all themes"
        click.echo(f"{r['email']:40} {r['status']:12} {','.join(r['sections']):16} {themes}")
    click.echo(f"{len(records)} subscriber(s)")


@subscribers.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Everything held, as JSON (right of access).")
@pass_state
def show(state: CliState, email: str, as_json: bool) -> None:
    """All data held about one address, consent history included."""
    app = state.app()
    with app.engine.connect() as conn:
        data = privacy.data_held(conn, _address(email))
    if data is None:
        raise click.ClickException(f"no data held about {email}")
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    profile = data["subscriber"] or {}
    for key, value in profile.items():
        click.echo(f"{key:16} {value}")
    if waiting := data["pending_request"]:
        click.echo(f"pending request  {waiting['requested_at']}: sections "
                   f"{','.join(waiting['sections'])}, themes "
                   f"{','.join(waiting['themes']) or 'all'}, name {waiting['name'] or '-'} "
                   "(applied only if the address confirms it)")
    if data["suppression"]:
        click.echo(f"suppressed       {data['suppression']['reason']} since "
                   f"{data['suppression']['since']}")
    click.echo("consent history:")
    for e in data["consent_history"]:
        click.echo(f"  {e['occurred_at']}  {e['event']:16} {e['source']}"
                   f"  text {e['consent_text_version'] or '-'}  ip {e['ip'] or '-'}")
    click.echo(f"mailings: {len(data['mailings'])}")
    for merged in data["merged_records"]:
        click.echo(f"merged record, a second subscription of this address in another letter "
                   f"case, merged on {merged['merged_at']} ({merged['merged_by']}):")
        for key, value in merged["record"].items():
            click.echo(f"  {key:16} {value}")
        click.echo(f"  mailings: {len(merged['mailings'])}")


@subscribers.command("forget")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def forget_(state: CliState, email: str, yes: bool) -> None:
    """Erase an address's personal data; keep only a hashed suppression entry."""
    address = _address(email)
    if not yes:
        click.confirm(f"Erase all personal data of {address}? This cannot be undone", abort=True)
    known = forget(state.app(), address, "admin:cli")
    click.echo(f"Erased {address}; only a hashed suppression entry remains."
               if known else f"No data held about {address}; added a hashed suppression entry.")


@subscribers.command("purge")
@pass_state
def purge(state: CliState) -> None:
    """Erase subscribers still pending after `pending_purge_days`, and delete subscribe
    requests that have waited as long for their confirm link (as the daily purge-pending
    job does)."""
    app = state.app()
    count = purge_pending(app)
    click.echo(f"Purged {count} pending subscriber(s) older than "
               f"{app.settings.pending_purge_days} days.")


@subscribers.command("revoke-links")
@click.argument("email")
@pass_state
def revoke(state: CliState, email: str) -> None:
    """Make every link sent to an address stop working (e.g. after a forwarded mail)."""
    app = state.app()
    address = _address(email)
    with app.engine.begin() as conn:
        sub = subs.find_by_email(conn, address)
        if sub is None:
            raise click.ClickException(f"{address} is not a subscriber")
        subs.revoke_links(conn, sub.id, app.clock.now(), "admin:cli")
    click.echo(f"Revoked every link sent to {address}; new mails carry new links.")
