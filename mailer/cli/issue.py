"""`mailer preview`, `mailer lint` and `mailer send`: the editor's and operator's verbs."""

from __future__ import annotations

import sys
import webbrowser
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import click
from sqlalchemy import exists, func, select

from mailer.addresses import InvalidAddress, normalize_email
from mailer.app import App
from mailer.cli import CliState, main, pass_state, preview_tools
from mailer.compose import compose_issue, issue_moment
from mailer.models import Issue, IssueStatus, OutboxStatus, SubscriberStatus
from mailer.preview import (
    build_preview,
    is_sent,
    sent_preview_note,
    sent_segment,
    write_preview,
)
from mailer.render.lint import Finding, has_errors
from mailer.review import ReviewOptions, review
from mailer.sending import (
    NothingNewForAnyone,
    SegmentPlan,
    SendResult,
    check_sendable,
    nothing_new_for_anyone_note,
    require_news,
    segment_plans,
    send_issue,
    send_test,
    store_issue,
)
from mailer.settings import with_overrides
from mailer.store.tables import outbox, subscribers

date_option = click.option(
    "--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Compose the issue for this date (YYYY-MM-DD) at the send time; default now.")


def _day(on: datetime | None) -> date | None:
    return on.date() if on else None


def _test_addresses(_ctx, _param, values: tuple[str, ...]) -> tuple[str, ...]:
    """Check every --test address before anything is composed or sent."""
    for value in values:
        try:
            normalize_email(value)
        except InvalidAddress as exc:
            raise click.BadParameter(f"{value!r} is not a valid address: {exc}") from None
    return values


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
@click.option("--serve", is_flag=True,
              help="Serve the issue on localhost; rebuilds and reloads when files change.")
@click.option("--port", type=click.IntRange(0, 65535), default=8025, show_default=True,
              help="Port for --serve.")
@click.option("--screenshot", is_flag=True,
              help="Also write PNGs: desktop, mobile (375 px) and with images blocked.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Show what changed since the last sent issue and the last proof.")
@pass_state
def preview(state: CliState, on: datetime | None, out: Path | None, open_browser: bool,
            serve: bool, port: int, screenshot: bool, show_diff: bool) -> None:
    """Write the upcoming issue as HTML, text and .eml, and lint it."""
    ignored = [name for name, given in (("--out", out is not None),
                                        ("--screenshot", screenshot), ("--diff", show_diff))
               if given]
    if serve and ignored:  # the live preview writes no files and takes no screenshots
        raise click.UsageError(f"{', '.join(ignored)} cannot be combined with --serve")
    if serve:
        return preview_tools.serve_preview(state, _day(on), port, open_browser)
    app = state.app()
    issue = compose_for(app, _day(on))
    if issue is None:
        return nothing_new(app, _day(on))
    sent = is_sent(app, issue)
    stored = sent_segment(app, issue) if sent else None
    result = build_preview(app, issue, segment=stored)
    folder = out or app.settings.path(app.settings.preview_dir)
    paths = write_preview(result, folder)
    click.echo(f"Issue nr. {issue.number} ({issue.period}): {issue.subject}")
    if sent:
        click.echo(sent_preview_note(stored is not None))
    for kind, path in paths.items():
        click.echo(f"  {kind:5} {path}")
    if screenshot:
        preview_tools.echo_screenshots(app, result.html, folder)
    if show_diff:
        preview_tools.echo_diff(app, issue, stored)
    echo_findings(review(app, issue, result))
    if open_browser:
        webbrowser.open(paths["html"].resolve().as_uri())


@main.command()
@date_option
@click.option("--check-links", is_flag=True,
              help="Also fetch every link and image (online; uses link_timeout).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--all", "show_all", is_flag=True,
              help="Also the client support findings that only MJML's own markup or the "
                   "template's progressive enhancements cause.")
@pass_state
def lint(state: CliState, on: datetime | None, check_links: bool, as_json: bool,
         show_all: bool) -> None:
    """Check the upcoming issue; exit 1 if there are errors."""
    app = state.app()
    issue = compose_for(app, _day(on))
    if issue is None and as_json:  # machines get a document, with nothing to check
        return preview_tools.echo_findings_json(None, [])
    if issue is None:
        return nothing_new(app, _day(on))
    options = ReviewOptions(check_links=check_links, show_hidden=show_all)
    findings = review(app, issue, build_preview(app, issue), options)
    if as_json:
        preview_tools.echo_findings_json(issue, findings)
    else:
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
@click.option("--dry-run", is_flag=True,
              help="Show recipients per segment and a sample message; send nothing.")
@click.option("--test", "test_addresses", multiple=True, metavar="ADDR",
              callback=_test_addresses,
              help="Send only to these addresses, with [TEST] in the subject (repeatable).")
@click.option("--enqueue-only", is_flag=True,
              help="Queue and render the issue, mark it sending, and leave the sending to "
                   "`mailer worker`s (also: setting enqueue_only).")
@click.option("--even-without-news", is_flag=True,
              help="Send also to segments that get nothing new (everything in it for them "
                   "was in an earlier issue), and send an issue with nothing new for anyone.")
@pass_state
def send(state: CliState, on: datetime | None, yes: bool, dry_run: bool,
         test_addresses: tuple[str, ...], enqueue_only: bool, even_without_news: bool) -> None:
    """Compose and send the issue to every active subscriber (resumes a partial send).

    Segments with nothing new for them are skipped unless --even-without-news. Exit 0 when
    the send is done; exit 1 when it pauses (error budget spent; continue with `mailer
    issues resume ID`) or cannot start; exit 3 when it ends unfinished because another live
    process (`mailer send`, `mailer worker`) holds the rest of the rows."""
    refuse_combined_modes(dry_run, test_addresses, enqueue_only, even_without_news)
    app = state.app()
    app.settings.require_secret_key()  # every mode signs links: fail before anything is stored
    if not (enqueue_only or app.settings.enqueue_only):  # workers send: their settings count
        require_provider(app)
    if dry_run or test_addresses:
        issue = compose_for(app, _day(on))
        if issue is None:
            return nothing_new(app, _day(on))
        if dry_run:
            return dry_run_report(app, issue, even_without_news)
        return test_send(app, issue, test_addresses)
    issue = store_issue(app, issue_moment(app.settings, app.clock, _day(on)))
    if issue is None:
        return nothing_new(app, _day(on))
    check_sendable(app, issue)  # refuse a held or paused issue before asking to send it
    try:
        plans = require_news(app, issue, even_without_news=even_without_news)
    except NothingNewForAnyone:
        return nothing_new_for_anyone(issue)
    skipped = echo_skipped(plans)
    if not yes:
        confirm_send(app, issue, skipped)
    if enqueue_only or app.settings.enqueue_only:
        app.settings = with_overrides(app.settings, enqueue_only=True)
        return echo_enqueued(send_issue(app, issue, even_without_news=even_without_news))
    result = send_with_progress(app, issue, even_without_news=even_without_news)
    echo_result(result)
    exit_for(result)


def refuse_combined_modes(dry_run: bool, test_addresses: tuple[str, ...], enqueue_only: bool,
                          even_without_news: bool) -> None:
    """A UsageError when options that each choose what `send` does are combined: each
    would silently win over the other."""
    modes = [name for name, given in (("--dry-run", dry_run),
                                      ("--test", bool(test_addresses)),
                                      ("--enqueue-only", enqueue_only)) if given]
    if test_addresses and even_without_news:  # a test copy goes out whatever it holds
        modes.append("--even-without-news")
    if len(modes) > 1:
        raise click.UsageError(f"{', '.join(modes)} cannot be combined")


def confirm_send(app: App, issue: Issue, skipped_segments: list[str]) -> None:
    """Ask whether to send, saying whom the send reaches and whom it skips or reached."""
    to_send = still_to_send(app, issue, skipped_segments)
    left = still_to_send(app, issue)
    click.confirm(f"Send nr. {issue.number} '{issue.subject}' to "
                  f"{audience(active_count(app), to_send, left - to_send)}?", abort=True)


def nothing_new_for_anyone(issue: Issue) -> None:
    """Say that the issue is not sent: no segment of the active subscribers gets news."""
    click.echo(nothing_new_for_anyone_note(issue))


def echo_skipped(plans: list[SegmentPlan]) -> list[str]:
    """List the segments a send skips, and why; returns their keys."""
    skipped = [p for p in plans if p.skip_reason]
    for p in skipped:  # the reason as the outbox rows and the dry run say it
        click.echo(f"  {p.subscribers:6}  {p.key}  ({p.skip_reason})")
    return [p.key for p in skipped]


# `mailer send` and `mailer issues resume|retry-failed` exit with this when they end
# unfinished because another live process holds the rest of the issue (see README).
EXIT_SENDING_ELSEWHERE = 3


def exit_for(result: SendResult) -> None:
    """Exit 1 for a paused issue, EXIT_SENDING_ELSEWHERE when another process sends the
    rest; else return (exit 0)."""
    if result.drain.paused:
        raise SystemExit(1)
    if result.elsewhere and not result.finished:
        raise SystemExit(EXIT_SENDING_ELSEWHERE)


def require_provider(app: App) -> None:
    """Build the provider now: an unknown name or a missing key stops the command with
    one line before an issue is stored, queued and frozen (and a dry run shows it)."""
    app.provider  # noqa: B018 - building it is the check


def echo_enqueued(result: SendResult) -> None:
    """Say what was queued for the workers."""
    c, issue = result.counts, result.issue
    state = IssueStatus.SENT.value if result.finished else IssueStatus.SENDING.value
    click.echo(f"Issue nr. {issue.number} ({issue.period}): {state}, {result.enqueued} added "
               f"to the outbox; queued {c['queued']}, skipped {c['skipped']}. "
               "Workers (`mailer worker`) send it.")


def send_with_progress(app: App, issue: Issue, *, resume: bool = False,
                       even_without_news: bool = False) -> SendResult:
    """Send with a progress bar; SIGTERM/Ctrl-C stop after the batches in flight."""
    from mailer.cli.progress import graceful_stop, progress_bar

    total = still_to_send(app, issue)
    with graceful_stop() as stop, progress_bar(total, sys.stderr.isatty()) as update:
        return send_issue(app, issue, stop, update, resume=resume,
                          even_without_news=even_without_news)


def dry_run_report(app: App, issue: Issue, even_without_news: bool = False) -> None:
    """Recipients per segment and a sample message; nothing is stored or sent."""
    click.echo(f"Dry run: nr. {issue.number} ({issue.period}) '{issue.subject}'; "
               f"provider {app.settings.provider}. Nothing is sent.")
    plans = segment_plans(app, issue, even_without_news)
    for p in plans:
        click.echo(f"  {p.subscribers:6}  {p.key}  ({plan_note(p, even_without_news)})")
    total = sum(p.subscribers for p in plans if not p.skip_reason)
    click.echo(f"Would send to {total} of {sum(p.subscribers for p in plans)} active "
               "subscribers.")
    if plans and not any(p.new for p in plans) and not even_without_news:
        click.echo(nothing_new_for_anyone_note(issue))
    sample = build_preview(app, issue)
    click.echo("--- sample message (text part) ---")
    click.echo(f"Subject: {sample.segment.subject}")
    click.echo("\n".join(sample.text.splitlines()[:25]))
    echo_findings(review(app, issue, sample))  # every check of `mailer lint`, not a subset


def plan_note(plan: SegmentPlan, even_without_news: bool) -> str:
    """'8 items, 1 new', or why the segment is skipped (as `mailer send` says it), or that
    it is sent anyway."""
    if plan.skip_reason:
        return plan.skip_reason
    if plan.new:
        return f"{plan.items} items, {plan.new} new"
    return f"{plan.items} items, none new: sent anyway (--even-without-news)"


def test_send(app: App, issue: Issue, addresses: tuple[str, ...]) -> None:
    """Send a [TEST] copy to a few addresses; the issue's own send is untouched."""
    for address, outcome in send_test(app, issue, list(addresses)):
        click.echo(f"  {address}: {outcome}")


def audience(active: int, to_send: int, skipped: int = 0) -> str:
    """Whom a send reaches, as the confirmation puts it."""
    if to_send == active:
        return f"{active} active subscribers"
    done = active - to_send - skipped
    why = ([f"{skipped} skipped: nothing or nothing new for them"] if skipped else []) + (
        [f"{done} already done"] if done else [])
    return f"{to_send} of {active} active subscribers ({'; '.join(why)})"


def still_to_send(app: App, issue: Issue, skipped_segments: Sequence[str] = ()) -> int:
    """Active subscribers a send of this issue would still reach: those not yet in its
    outbox and those whose row is queued or in flight (a rerun or resume sends nobody twice),
    leaving out the segments it skips.
    """
    done = exists().where(
        outbox.c.issue_id == issue.id, outbox.c.subscriber_id == subscribers.c.id,
        outbox.c.status.not_in([OutboxStatus.QUEUED.value, OutboxStatus.SENDING.value]))
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).where(
            subscribers.c.status == SubscriberStatus.ACTIVE.value, ~done,
            subscribers.c.segment_key.not_in(list(skipped_segments)))).scalar() or 0


def active_count(app: App) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).where(
            subscribers.c.status == SubscriberStatus.ACTIVE.value)).scalar() or 0


def echo_result(result: SendResult) -> None:
    """Summarise a send run."""
    c = result.counts
    d = result.drain
    if result.finished:
        state = IssueStatus.SENT.value
    elif d.paused:  # `mailer send` refuses a paused issue: only a resume goes on
        # ... or, when nothing is left to resume (every row failed), a retry of the failed.
        way = "resume" if c["queued"] + c["sending"] else "retry-failed"
        state = f"paused; once the cause is fixed: mailer issues {way} {result.issue.id}"
    elif result.elsewhere:  # running it again now would only find the same rows taken
        held = ", ".join(f"{n} row(s) leased to {w}" for w, n in result.elsewhere.items())
        state = (f"not finished: another process is sending it ({held}); let it finish, "
                 "or run again once it has stopped")
    else:
        state = "not finished (run again to resume)"
    click.echo(f"Issue nr. {result.issue.number} ({result.issue.period}): {state}")
    click.echo(f"  sent {c['sent']}, failed {c['failed']}, skipped {c['skipped']}, "
               f"queued {c['queued']}, in flight {c['sending']}, "
               f"possible duplicates {c['possible_duplicates']}")
    if d.bounced:
        click.echo(f"  {d.bounced} subscriber(s) marked bounced by the provider")
    if d.lost_to_takeover:
        click.echo(f"  {d.lost_to_takeover} answer(s) came after another worker had taken "
                   "their rows over; that worker decided them")
    if d.paused:
        click.echo(f"  PAUSED: {d.paused}")
    elif d.stopped:
        click.echo("  stopped on request; run `mailer send` or `mailer issues resume "
                   f"{result.issue.id}` to continue")
    for error in d.errors[:5]:
        times = d.error_counts.get(error, 1)
        click.echo(f"  error: {error}" + (f" ({times} times)" if times > 1 else ""))
    if c["failed"] and not d.paused:  # failed rows stay failed: no rerun or resume takes them
        click.echo(f"  {c['failed']} row(s) failed; once the cause is fixed, "
                   f"`mailer issues retry-failed {result.issue.id}` sends them again")
