"""`mailer issues ...`: look at and steer stored issues."""

from __future__ import annotations

import getpass
import json
from datetime import datetime

import click
from sqlalchemy import func, select

from mailer.app import App
from mailer.cli import CliState, main, pass_state
from mailer.dutch import long_date, time_of_day
from mailer.models import IssueStatus, OutboxStatus
from mailer.store import issues as issue_store
from mailer.store import outbox as box
from mailer.store import outbox_fill
from mailer.store.issues import ArchiveChange, IssueRecord
from mailer.store.tables import outbox

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@main.group()
def issues() -> None:
    """Stored issues: list, show, status, resume, retry-failed, hold and release, and
    unpublish and republish (take a sent issue off the public archive, put it back)."""


def issue_summary(app: App, record: IssueRecord) -> dict:
    """One issue as plain data: id, period, subject, status, outbox counts and why rows
    were skipped."""
    with app.engine.connect() as conn:
        counts = box.status_counts(conn, record.id)
        skipped = outbox_fill.skip_reasons(conn, record.id)
        unpublished = issue_store.unpublished_since(conn, record.id)
    return {"id": record.id, "number": record.number, "period": record.period,
            "subject": record.subject, "status": record.status.value,
            "note": record.status_note, "sent_at": record.sent_at.isoformat()
            if record.sent_at else None, "counts": counts,
            "even_without_news": record.even_without_news,
            "skipped": [{"reason": reason, "rows": n} for reason, n in skipped.items()],
            "unpublished": unpublished_summary(unpublished)}


def load_record(app: App, issue_id: int) -> IssueRecord:
    """An issue by id, or a clear error."""
    with app.engine.connect() as conn:
        record = issue_store.issue_by_id(conn, issue_id)
    if record is None:
        raise click.ClickException(f"no issue with id {issue_id}; see `mailer issues list`")
    return record


@issues.command("list")
@json_option
@pass_state
def list_issues(state: CliState, as_json: bool) -> None:
    """All issues, newest first, with their outbox counts."""
    app = state.app()
    with app.engine.connect() as conn:
        records = issue_store.list_issues(conn)
    summaries = [issue_summary(app, r) for r in records]
    if as_json:
        click.echo(json.dumps(summaries, indent=2, ensure_ascii=False))
        return
    if not summaries:
        click.echo("No issues yet.")
    for s in summaries:
        c = s["counts"]
        click.echo(f"{s['id']:4}  nr. {s['number']:<3} {s['period']}  {s['status']:8} "
                   f"sent {c['sent']}/{sum(c[x.value] for x in OutboxStatus)}  {s['subject']}")


@issues.command("show")
@click.argument("issue_id", type=int)
@json_option
@pass_state
def show_issue(state: CliState, issue_id: int, as_json: bool) -> None:
    """One issue in detail: status, counts and the most common errors."""
    app = state.app()
    summary = issue_summary(app, load_record(app, issue_id))
    with app.engine.connect() as conn:
        errors = conn.execute(
            select(outbox.c.last_error, func.count()).where(
                outbox.c.issue_id == issue_id, outbox.c.last_error.is_not(None),
                outbox.c.status.in_([OutboxStatus.FAILED.value, OutboxStatus.QUEUED.value]))
            .group_by(outbox.c.last_error).order_by(func.count().desc()).limit(10)).all()
    summary["errors"] = [{"error": e, "rows": n} for e, n in errors]
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    echo_status(summary)
    for e in summary["errors"]:
        click.echo(f"  {e['rows']:6} x {e['error']}")


@issues.command("status")
@click.argument("issue_id", type=int)
@json_option
@pass_state
def issue_status(state: CliState, issue_id: int, as_json: bool) -> None:
    """Where an issue's send stands."""
    app = state.app()
    summary = issue_summary(app, load_record(app, issue_id))
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        echo_status(summary)


def echo_status(s: dict) -> None:
    """Print an issue summary."""
    c = s["counts"]
    click.echo(f"Issue {s['id']} nr. {s['number']} ({s['period']}): {s['status']}  {s['subject']}")
    if s["note"]:
        click.echo(f"  note: {s['note']}")
    click.echo(f"  sent {c['sent']}, failed {c['failed']}, skipped {c['skipped']}, queued "
               f"{c['queued']}, in flight {c['sending']}, possible duplicates "
               f"{c['possible_duplicates']}")
    if s["even_without_news"]:
        click.echo("  sent also to segments with nothing new (--even-without-news)")
    if s["unpublished"]:
        click.echo(f"  {unpublished_line(s['unpublished'])}")
    if s["skipped"]:
        click.echo("  skipped:")
    for skip in s["skipped"]:
        click.echo(f"  {skip['rows']:6} x {skip['reason']}")


@issues.command("resume")
@click.argument("issue_id", type=int)
@pass_state
def resume_issue(state: CliState, issue_id: int) -> None:
    """Continue a paused, stopped or crashed send where it left off.

    Exit 1 and 3 as for `mailer send`: paused again, or the rest held by another process."""
    app = state.app()
    record = load_record(app, issue_id)
    if record.status is IssueStatus.SENT:
        click.echo(f"Issue {issue_id} was sent completely; nothing to resume.")
        return
    if not record.frozen:
        raise click.ClickException(f"issue {issue_id} is {record.status.value}; its send has "
                                   "not started (use `mailer send`)")
    run_send(app, record)


@issues.command("retry-failed")
@click.argument("issue_id", type=int)
@pass_state
def retry_failed(state: CliState, issue_id: int) -> None:
    """Queue an issue's failed rows again (after fixing the cause) and send them.

    Exit 1 and 3 as for `mailer send`: paused again, or the rest held by another process."""
    app = state.app()
    record = load_record(app, issue_id)
    with app.engine.begin() as conn:
        count = box.requeue_failed(conn, issue_id, app.clock.now())
        if count and record.status is IssueStatus.SENT:
            issue_store.set_issue_status(conn, issue_id, IssueStatus.SENDING, app.clock.now())
    click.echo(f"{count} failed row(s) queued again.")
    if count:
        run_send(app, record)


def run_send(app: App, record: IssueRecord) -> None:
    """Send the rest of a stored issue with a progress bar, then summarise."""
    from mailer.cli.issue import echo_result, exit_for, send_with_progress

    with app.engine.connect() as conn:
        issue = issue_store.load_issue(conn, record)
    result = send_with_progress(app, issue, resume=True)
    echo_result(result)
    exit_for(result)


@issues.command("hold")
@click.argument("issue_id", type=int)
@click.option("--note", help="Why it is held (shown in the issue's status).")
@pass_state
def hold(state: CliState, issue_id: int, note: str | None) -> None:
    """Stop the scheduled send of an issue until it is released."""
    from mailer.store.issue_control import hold_issue

    app = state.app()
    with app.engine.begin() as conn:
        changed = hold_issue(conn, issue_id, note)
    click.echo(f"Issue {issue_id} is held: the scheduler will not send it."
               if changed else f"Issue {issue_id} was already held.")


@issues.command("release")
@click.argument("issue_id", type=int)
@pass_state
def release(state: CliState, issue_id: int) -> None:
    """Let a held issue go out at the next scheduled newsletter run."""
    from mailer.store.issue_control import release_issue

    app = state.app()
    with app.engine.begin() as conn:
        release_issue(conn, issue_id)
    click.echo(f"Issue {issue_id} is released: the next scheduled run sends it "
               "(or now: mailer jobs run newsletter).")


def unpublished_summary(change: ArchiveChange | None) -> dict | None:
    """Who took the issue off the public archive, when and why; None while it is on it."""
    return change and {"at": change.at.isoformat(), "by": change.by, "reason": change.reason}


def unpublished_line(unpublished: dict) -> str:
    """'niet in het archief sinds <wanneer> (<wie>): <waarom>', for the editors."""
    change = ArchiveChange(True, unpublished["by"], unpublished["reason"],
                           datetime.fromisoformat(unpublished["at"]))
    return f"niet in het archief {since_text(change)}"


def since_text(change: ArchiveChange) -> str:
    """'sinds <wanneer> (<wie>): <waarom>' of an issue taken off the archive."""
    reason = f": {change.reason}" if change.reason else ""
    return f"sinds {long_date(change.at)} om {time_of_day(change.at)} ({change.by}){reason}"


def login_name() -> str:
    """Who runs the command, as the system knows them: recorded with an archive change."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment nor in the passwd file
        return "onbekend"


by_option = click.option("--by", default=login_name, show_default="your login name",
                         help="Who makes the change (recorded with it).")


def require_sent(record: IssueRecord) -> None:
    """Refuse an archive change for an issue the archive does not show: not sent yet."""
    if not record.frozen:
        raise click.ClickException(f"nummer {record.number} staat niet in het archief: het is "
                                   "nog niet verstuurd")


def archive_page(app: App, record: IssueRecord) -> str:
    """The address of the issue's page in the public archive."""
    return app.links.url(f"archief/{record.period}")


@issues.command("unpublish")
@click.argument("issue_id", type=int)
@click.option("--reason", help="Why, e.g. an article retracted (recorded, not shown to readers).")
@by_option
@pass_state
def unpublish(state: CliState, issue_id: int, reason: str | None, by: str) -> None:
    """Take a sent issue off the public archive: its page says it is no longer available."""
    app = state.app()
    record = load_record(app, issue_id)
    require_sent(record)
    change = ArchiveChange(unpublished=True, by=by, reason=reason, at=app.clock.now())
    with app.engine.begin() as conn:
        changed = issue_store.change_archive(conn, issue_id, change)
        in_force = issue_store.unpublished_since(conn, issue_id) or change
    name = f"Nummer {record.number} ({record.period})"
    if not changed:
        click.echo(f"{name} stond al niet in het archief, {since_text(in_force)}.")
        return
    click.echo(f"{name} staat niet meer in het archief; wie {archive_page(app, record)} "
               "opent, leest dat het niet meer beschikbaar is. Terugzetten: "
               f"mailer issues republish {issue_id}")


@issues.command("republish")
@click.argument("issue_id", type=int)
@by_option
@pass_state
def republish(state: CliState, issue_id: int, by: str) -> None:
    """Put an issue taken off the public archive back on it, as it was sent."""
    app = state.app()
    record = load_record(app, issue_id)
    require_sent(record)
    change = ArchiveChange(unpublished=False, by=by, reason=None, at=app.clock.now())
    with app.engine.begin() as conn:
        changed = issue_store.change_archive(conn, issue_id, change)
    name = f"Nummer {record.number} ({record.period})"
    click.echo(f"{name} staat weer in het archief: {archive_page(app, record)}" if changed
               else f"{name} stond al in het archief.")
