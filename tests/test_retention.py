"""Storage limitation (AVG art. 5(1)(e)): what the daily retention job erases, on both
databases, and what it must leave alone (the suppression, the consent proof, anything in
flight)."""

import os
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, func, insert, select

from mailer.clock import FixedClock
from mailer.models import SubscriberStatus
from mailer.retention import apply_retention
from mailer.store import outbox as box
from mailer.store import privacy
from mailer.store import retention as retention_store
from mailer.store import subscribers as subs
from mailer.store.tables import (
    consent_events,
    issues,
    outbox,
    rate_limit_hits,
    subscribers,
    suppressions,
    webhook_events,
)
from mailer.subscriber_import import CsvRow, import_rows
from mailer.subscriptions import (
    ConfirmOutcome,
    SubscribeOutcome,
    confirm,
    forget,
    purge_pending,
    subscribe,
    unsubscribe,
)
from tests.subscription_support import PREFS, ctx, ledger, row_of


def days_later(app, days: float):
    return app.with_clock(FixedClock(app.clock.now() + timedelta(days=days)))


def active(app, email: str, name: str = "Naam") -> int:
    sid = subscribe(app, email, name, PREFS, ctx(app)).mail.subscriber_id
    assert confirm(app, sid, ctx(app)) is ConfirmOutcome.CONFIRMED
    return sid


def leave(app, sid: int, status: SubscriberStatus) -> None:
    if status is SubscriberStatus.UNSUBSCRIBED:
        unsubscribe(app, sid, ctx(app))
        return
    with app.engine.begin() as conn:
        subs.set_status(conn, sid, status, app.clock.now(), "webhook:postmark",
                        {"detail": "550 5.1.1 mailbox unavailable"})


def add_issue(app, number: int, *, status: str = "sent", sent: datetime | None) -> int:
    now = app.clock.now()
    with app.engine.begin() as conn:
        return conn.execute(insert(issues).values(
            list_id="l", period=f"2026-W{number:02d}", number=number, issue_date=date(2026, 1, 1),
            moment=now, subject="s", preheader="p", status=status, created_at=now,
            sent_at=sent)).inserted_primary_key[0]


def add_row(app, issue_id: int, sid: int, email: str, status: str, *,
            error: str | None = None, provider_id: str | None = None) -> int:
    now = app.clock.now()
    with app.engine.begin() as conn:
        return conn.execute(insert(outbox).values(
            issue_id=issue_id, subscriber_id=sid, email=email, segment_key=PREFS.key(),
            status=status, attempts=1, message_id=f"<{issue_id}.{sid}@x>",
            provider_message_id=provider_id, last_error=error, possible_duplicate=False,
            created_at=now, updated_at=now, sent_at=now if status == "sent" else None,
        )).inserted_primary_key[0]


def outbox_row(app, row_id: int):
    with app.engine.connect() as conn:
        return conn.execute(select(outbox).where(outbox.c.id == row_id)).first()


def snapshot(app) -> dict:
    with app.engine.connect() as conn:
        return {t.name: sorted(map(repr, conn.execute(select(t)).all()))
                for t in (subscribers, consent_events, suppressions, outbox, webhook_events,
                          rate_limit_hits)}


# --- subscribers who left ------------------------------------------------------------------

def test_who_left_longer_ago_than_left_subscriber_days_is_erased_but_stays_suppressed(app):
    assert app.settings.left_subscriber_days == 90
    stays = active(app, "blijft@example.org", "Bea Blijft")
    gone = {status: active(app, f"{status.value}@example.org", f"Naam {status.value}")
            for status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED,
                           SubscriberStatus.COMPLAINED)}
    for status, sid in gone.items():
        leave(app, sid, status)
    recent = active(app, "recent@example.org", "Rik Recent")
    leave(days_later(app, 30), recent, SubscriberStatus.UNSUBSCRIBED)
    issue = add_issue(app, 1, sent=app.clock.now() + timedelta(days=30))  # records kept
    failed = add_row(app, issue, gone[SubscriberStatus.BOUNCED], "bounced@example.org", "failed",
                     error="550 bounced@example.org: no such user")

    report = apply_retention(days_later(app, 91))

    assert report.leavers == 3
    for status, sid in gone.items():
        erased = row_of(app, sid)
        assert erased.status == "erased" and erased.name == ""
        assert erased.email == privacy.erased_address(sid)
        events = ledger(app, sid)
        # The proof stays: what happened, when, where and under which consent text ...
        assert [e.event for e in events][:2] == ["subscribe", "confirm"]
        assert events[0].source == "web:test" and events[0].consent_text_version == "2026-11"
        assert events[-1].event == "erase" and events[-1].source == "retention"
        # ... without the IP address, the user agent or free text that may name the address.
        assert all(e.ip is None and e.user_agent is None and e.details == {} for e in events[:-1])
        with app.engine.connect() as conn:
            reason = conn.execute(select(suppressions.c.reason).where(
                suppressions.c.email_hash == subs.email_hash(f"{status.value}@example.org"))
            ).scalar()
        assert reason == status.value
    assert outbox_row(app, failed).email == privacy.erased_address(gone[SubscriberStatus.BOUNCED])
    assert outbox_row(app, failed).last_error is None
    for sid, name in ((stays, "Bea Blijft"), (recent, "Rik Recent")):
        assert row_of(app, sid).name == name and row_of(app, sid).status != "erased"
    assert apply_retention(days_later(app, 92)).leavers == 0  # idempotent


def test_a_leaver_who_asked_to_come_back_or_has_a_row_in_flight_is_kept(app):
    asking = active(app, "terug@example.org", "Tess")
    in_flight = active(app, "onderweg@example.org", "Otto")
    for sid in (asking, in_flight):
        leave(app, sid, SubscriberStatus.UNSUBSCRIBED)
    later = days_later(app, 91)
    assert subscribe(later, "terug@example.org", "Tess", PREFS, ctx(later)).outcome \
        is SubscribeOutcome.RENEWED  # a confirm link for this request is on its way
    issue = add_issue(app, 2, status="sending", sent=None)
    add_row(app, issue, in_flight, "onderweg@example.org", "sending")

    assert apply_retention(later).leavers == 0
    assert row_of(app, asking).name == "Tess" and row_of(app, in_flight).name == "Otto"


def test_who_was_erased_after_unsubscribing_can_come_back_only_by_double_opt_in(app):
    left = active(app, "weg@example.org")
    bounced = active(app, "stuk@example.org")
    leave(app, left, SubscriberStatus.UNSUBSCRIBED)
    leave(app, bounced, SubscriberStatus.BOUNCED)
    later = days_later(app, 91)
    assert apply_retention(later).leavers == 2
    # Nobody adds the address back for them: an import is refused ...
    rows = [CsvRow(2, "weg@example.org", "Weg", PREFS)]
    with later.engine.begin() as conn:
        report = import_rows(conn, rows, confirmed=True, context=subs.ConsentContext("csv"),
                             note="oude lijst", now=later.clock.now())
    assert report.added == 0 and report.refused
    # ... but they themselves may subscribe again and confirm; the bounce stays suppressed.
    again = subscribe(later, "weg@example.org", "Weg", PREFS, ctx(later))
    assert again.outcome is SubscribeOutcome.NEW
    with later.engine.connect() as conn:
        assert subs.is_suppressed(conn, "weg@example.org")  # until confirmed
    assert confirm(later, again.mail.subscriber_id, ctx(later)) is ConfirmOutcome.CONFIRMED
    with later.engine.connect() as conn:
        assert not subs.is_suppressed(conn, "weg@example.org")
    assert subscribe(later, "stuk@example.org", "", PREFS, ctx(later)).outcome \
        is SubscribeOutcome.SUPPRESSED


def test_many_leavers_are_erased_in_a_bounded_number_of_statements(app):
    """Set-based: the statements do not grow with the number of people (chunks of ids)."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        conn.execute(insert(subscribers), [dict(
            email=f"p{i}@example.org", name=f"Persoon {i}", status="unsubscribed",
            sections=["magazine"], themes=[], segment_key="s", token_version=1, source="csv",
            created_at=now, updated_at=now, unsubscribed_at=now) for i in range(1200)])
    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(app.engine, "before_cursor_execute", listen)
    try:
        assert apply_retention(days_later(app, 91)).leavers == 1200
    finally:
        event.remove(app.engine, "before_cursor_execute", listen)
    assert len(statements) < 120
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(
            subscribers.c.status == "erased", subscribers.c.name == "")).scalar() == 1200
        assert conn.execute(select(func.count()).select_from(suppressions)).scalar() == 1200


def test_a_crash_in_the_middle_of_erasing_leavers_leaves_everyone_whole(app, monkeypatch):
    sid = active(app, "half@example.org", "Hans")
    leave(app, sid, SubscriberStatus.UNSUBSCRIBED)
    before = snapshot(app)

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(retention_store, "log_erasures", crash)
    with pytest.raises(RuntimeError):
        apply_retention(days_later(app, 91))
    assert snapshot(app) == before


# --- delivery records ----------------------------------------------------------------------

def test_delivery_records_of_old_issues_lose_addresses_and_errors_but_keep_statistics(app):
    assert app.settings.delivery_record_days == 90
    sid = active(app, "lezer@example.org")
    old = add_issue(app, 3, sent=app.clock.now())
    newer = add_issue(app, 4, sent=app.clock.now() + timedelta(days=30))
    sent = add_row(app, old, sid, "lezer@example.org", "sent", provider_id="pm-1")
    failed = add_row(app, old, active(app, "ander@example.org"), "ander@example.org", "failed",
                     error="550 ander@example.org unknown")
    skipped = add_row(app, old, active(app, "derde@example.org"), "derde@example.org",
                      "skipped", error="niets nieuws voor dit segment")
    kept = add_row(app, newer, sid, "lezer@example.org", "sent", provider_id="pm-2")
    with app.engine.connect() as conn:
        counts_before = box.status_counts(conn, old)

    report = apply_retention(days_later(app, 91))

    assert report.delivery_rows == 3
    for row_id in (sent, failed, skipped):
        pruned = outbox_row(app, row_id)
        assert pruned.email == "" and pruned.provider_message_id is None
    assert outbox_row(app, failed).last_error is None
    assert outbox_row(app, skipped).last_error == "niets nieuws voor dit segment"  # our reason
    assert outbox_row(app, kept).email == "lezer@example.org"
    assert outbox_row(app, kept).provider_message_id == "pm-2"
    with app.engine.begin() as conn:
        assert box.status_counts(conn, old) == counts_before
        # No address left to send to: an old failure is not retried.
        assert box.requeue_failed(conn, old, app.clock.now()) == 0


def test_an_issue_still_sending_keeps_its_delivery_records(app):
    sid = active(app, "lezer@example.org")
    sending = add_issue(app, 5, status="sending", sent=None)
    odd = add_issue(app, 6, sent=app.clock.now())  # marked sent, yet a row is still in flight
    rows = [add_row(app, sending, sid, "lezer@example.org", "sent", provider_id="a"),
            add_row(app, sending, active(app, "b@example.org"), "b@example.org", "sending"),
            add_row(app, odd, sid, "lezer@example.org", "sending")]
    assert apply_retention(days_later(app, 400)).delivery_rows == 0
    assert [outbox_row(app, r).email for r in rows] == [
        "lezer@example.org", "b@example.org", "lezer@example.org"]


def test_the_file_providers_copies_of_old_issues_and_mails_are_deleted(app):
    folder = app.settings.path(app.settings.outbox_dir)
    old = add_issue(app, 7, sent=app.clock.now())
    sending = add_issue(app, 8, status="sending", sent=None)
    files = {name: folder / name for name in (
        f"issue-{old}/00000001-a@example.org.eml", f"issue-{sending}/00000002-a@example.org.eml",
        "issue-0/00000003-a@example.org.eml", "issue-0/00000004-b@example.org.eml")}
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("To: a@example.org\n\nhoi\n")
    long_ago = (app.clock.now() - timedelta(days=1)).timestamp()
    os.utime(files["issue-0/00000003-a@example.org.eml"], (long_ago, long_ago))
    later = days_later(app, 91)
    recent = (later.clock.now() - timedelta(days=1)).timestamp()
    os.utime(files["issue-0/00000004-b@example.org.eml"], (recent, recent))

    assert apply_retention(later, dry_run=True).files == 2
    assert all(p.exists() for p in files.values())
    assert apply_retention(later).files == 2
    assert sorted(n for n, p in files.items() if p.exists()) == [
        "issue-0/00000004-b@example.org.eml", f"issue-{sending}/00000002-a@example.org.eml"]


def test_forget_after_pruning_leaves_the_skip_reasons_intact(app):
    sid = active(app, "lezer@example.org")
    old = add_issue(app, 9, sent=app.clock.now())
    skipped = add_row(app, old, sid, "lezer@example.org", "skipped", error="niets nieuws")
    later = days_later(app, 91)
    apply_retention(later)
    assert forget(later, "lezer@example.org", "admin:test") is True
    assert outbox_row(app, skipped).last_error == "niets nieuws"


# --- the ledger, webhook replay keys, rate limits -------------------------------------------

def test_ledger_ip_addresses_and_user_agents_go_after_consent_ip_days(app):
    assert app.settings.consent_ip_days == 365
    early = active(app, "vroeg@example.org", "Vera")
    later = days_later(app, 300)
    late = active(later, "laat@example.org", "Lars")
    report = apply_retention(days_later(app, 366))
    assert report.ledger_entries == 2  # subscribe and confirm of the early one
    early_events = ledger(app, early)
    assert all(e.ip is None and e.user_agent is None for e in early_events)
    assert [e.event for e in early_events] == ["subscribe", "confirm"]
    assert early_events[1].details["sections"] == ["magazine"]  # what was agreed stays
    assert all(e.ip == "192.0.2.0" for e in ledger(app, late))
    assert row_of(app, early).name == "Vera"


def test_old_webhook_replay_keys_and_rate_limit_hits_are_deleted(app):
    assert app.settings.webhook_event_days == 30
    now = app.clock.now()
    with app.engine.begin() as conn:
        conn.execute(insert(webhook_events), [
            dict(provider="postmark", event_id="old", received_at=now),
            dict(provider="postmark", event_id="new", received_at=now + timedelta(days=20))])
        conn.execute(insert(rate_limit_hits), [
            dict(key="ip:old", occurred_at=now),
            dict(key="ip:new", occurred_at=now + timedelta(days=31))])
    report = apply_retention(days_later(app, 31))
    assert (report.webhook_keys, report.rate_limit_hits) == (1, 1)
    with app.engine.connect() as conn:
        assert conn.execute(select(webhook_events.c.event_id)).scalars().all() == ["new"]
        assert conn.execute(select(rate_limit_hits.c.key)).scalars().all() == ["ip:new"]


def test_rate_limit_hits_are_left_to_the_retention_job_alone(app):
    """One owner: the daily purge of unconfirmed sign-ups does not delete them as well."""
    with app.engine.begin() as conn:
        conn.execute(insert(rate_limit_hits).values(key="ip:old", occurred_at=app.clock.now()))
    later = days_later(app, 31)
    assert purge_pending(later) == 0
    with app.engine.connect() as conn:
        assert conn.execute(select(rate_limit_hits.c.key)).scalars().all() == ["ip:old"]
    assert apply_retention(later).rate_limit_hits == 1


# --- dry run, command, job, settings -------------------------------------------------------

def leavers_and_old_records(app) -> int:
    sid = active(app, "weg@example.org", "Wim Weg")
    leave(app, sid, SubscriberStatus.UNSUBSCRIBED)
    add_row(app, add_issue(app, 10, sent=app.clock.now()), active(app, "blijft@example.org"),
            "blijft@example.org", "sent", provider_id="pm")
    with app.engine.begin() as conn:
        conn.execute(insert(webhook_events).values(provider="brevo", event_id="e",
                                                   received_at=app.clock.now()))
    return sid


def test_a_dry_run_counts_what_would_go_and_changes_nothing(app):
    leavers_and_old_records(app)
    later = days_later(app, 400)
    before = snapshot(app)
    dry = apply_retention(later, dry_run=True)
    assert snapshot(app) == before
    real = apply_retention(later)
    assert dry.dry_run and not real.dry_run
    assert (dry.leavers, dry.delivery_rows, dry.webhook_keys) == (1, 1, 1)
    assert (dry.leavers, dry.delivery_rows, dry.ledger_entries, dry.webhook_keys,
            dry.rate_limit_hits, dry.files) == (real.leavers, real.delivery_rows,
                                                 real.ledger_entries, real.webhook_keys,
                                                 real.rate_limit_hits, real.files)


def test_the_command_shows_counts_and_never_an_address(app):
    from tests.test_cli import invoke

    leavers_and_old_records(app)
    env = {"MAILER_DATABASE_URL": app.settings.database_url, "MAILER_SECRET_KEY": "k" * 32,
           "MAILER_NOW": "2028-01-10T09:00",
           "MAILER_OUTBOX_DIR": str(app.settings.path(app.settings.outbox_dir))}
    dry = invoke(["retention", "--dry-run"], env)
    assert dry.exit_code == 0, dry.output
    assert "Dry run" in dry.output and "1 subscriber(s) who left" in dry.output
    assert "@" not in dry.output and "Wim" not in dry.output
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(
            subscribers.c.status == "erased")).scalar() == 0
    done = invoke(["retention"], env)
    assert done.exit_code == 0 and "1 subscriber(s) who left" in done.output
    assert "@" not in done.output
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(
            subscribers.c.status == "erased")).scalar() == 1


def test_the_retention_job_runs_daily_and_reports_counts(app):
    from mailer.jobs import load_jobs
    from tests.test_scheduler_runs import runner_at

    spec = {s.id: s for s in load_jobs(app.settings.path(app.settings.jobs_dir))}["retention"]
    assert spec.task == "retention"
    monday = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    fires = [spec.next_fire(monday + timedelta(days=d)) for d in range(2)]
    assert fires[1] - fires[0] == timedelta(days=1)
    gone = leavers_and_old_records(app)
    moment = app.clock.now() + timedelta(days=400)
    runner = runner_at(app, moment)
    outcome = runner.run(runner.specs["retention"], moment)
    assert outcome.status.value == "done", outcome.detail
    assert "1 subscriber(s) who left" in outcome.detail and "@" not in outcome.detail
    assert row_of(app, gone).status == "erased"


@pytest.mark.parametrize("name", ["left_subscriber_days", "delivery_record_days",
                                  "consent_ip_days", "webhook_event_days",
                                  "job_run_detail_days"])
def test_a_retention_period_under_a_day_is_refused(name):
    from mailer.errors import ConfigError
    from mailer.settings import load_settings
    from tests.conftest import REPO

    with pytest.raises(ConfigError, match=rf"setting {name}: must be at least 1"):
        load_settings(REPO / "mailer.toml", environ={f"MAILER_{name.upper()}": "0"})
