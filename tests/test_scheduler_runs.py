"""Job runs in one process: once per period, hold and release, minimum content, missed
runs within and beyond the grace period, loud failures. Real databases, real file provider."""

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_MISSED
from sqlalchemy import func, select

from mailer.app import App
from mailer.clock import FixedClock
from mailer.dutch import long_date
from mailer.jobs import build_scheduler, load_jobs
from mailer.scheduler import JobRunner, SchedulerProcess, period_key
from mailer.store import jobs as job_store
from mailer.store.issue_control import IssueStateError, hold_issue, release_issue
from mailer.store.jobs import RunStatus
from mailer.store.tables import issues, items, job_runs, outbox

AMS = ZoneInfo("Europe/Amsterdam")
THURSDAY_NINE = datetime(2026, 12, 3, 9, 0, tzinfo=AMS).astimezone(UTC)


def at(app: App, moment: datetime) -> App:
    """The same installation, its clock at another instant."""
    return app.with_clock(FixedClock(moment.astimezone(UTC)))


def runner_at(app: App, moment: datetime, owner: str = "test-host:1") -> JobRunner:
    specs = load_jobs(app.settings.path(app.settings.jobs_dir))
    return JobRunner(at(app, moment), specs, owner=owner)


def spec(runner: JobRunner, job_id: str):
    return runner.specs[job_id]


def notes(app: App) -> list[str]:
    """Subjects of the notes mailed to the editors (issue 0 in the file provider)."""
    folder = app.settings.path(app.settings.outbox_dir) / "issue-0"
    return sorted(message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"]
                  for p in folder.glob("*.eml")) if folder.is_dir() else []


def sent_rows(app: App) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).where(outbox.c.status == "sent")).scalar()


def issue_count(app: App) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(issues)).scalar()


def test_the_newsletter_runs_once_per_iso_week(loaded_app):
    first = runner_at(loaded_app, THURSDAY_NINE)
    outcome = first.run(spec(first, "newsletter"), THURSDAY_NINE)
    assert outcome.ran and outcome.status is RunStatus.DONE, outcome.detail
    assert outcome.period_key == "2026-W49"
    assert sent_rows(loaded_app) == 12
    with loaded_app.engine.connect() as conn:
        assert job_store.last_status(conn, "newsletter") is RunStatus.DONE
    # A manual run later that week, by another process, finds the period done.
    later = runner_at(loaded_app, THURSDAY_NINE + timedelta(hours=5), owner="other-host:2")
    again = later.run(spec(later, "newsletter"), later.app.clock.now(), manual=True)
    assert not again.ran and again.status is RunStatus.DONE
    assert sent_rows(loaded_app) == 12 and issue_count(loaded_app) == 1
    eml = list((loaded_app.settings.path(loaded_app.settings.outbox_dir)).glob("issue-1/*.eml"))
    assert len(eml) == 12


def test_too_few_new_items_sends_nothing_and_tells_the_editors(loaded_app):
    runner = runner_at(loaded_app, THURSDAY_NINE)
    job = replace(spec(runner, "newsletter"),
                  options={**spec(runner, "newsletter").options, "min_items": 50})
    outcome = runner.run(job, THURSDAY_NINE)
    assert outcome.status is RunStatus.SKIPPED and "fewer than the minimum of 50" in outcome.detail
    assert sent_rows(loaded_app) == 0 and issue_count(loaded_app) == 0
    assert notes(loaded_app) == ["Geen nieuwsbrief op donderdag 3 december 2026 om 9.00 uur"]
    # A week without any new content at all: skipped too, with its own note.
    empty = THURSDAY_NINE + timedelta(weeks=30)
    nothing = runner_at(loaded_app, empty).run(job, empty)
    assert nothing.status is RunStatus.SKIPPED and nothing.detail.startswith("nothing new")


def test_the_note_about_one_new_item_is_proper_dutch(loaded_app):
    runner = runner_at(loaded_app, THURSDAY_NINE)
    runner.run(spec(runner, "newsletter"), THURSDAY_NINE)
    week_later = THURSDAY_NINE + timedelta(weeks=1)
    later = runner_at(loaded_app, week_later)
    outcome = later.run(spec(later, "newsletter"), week_later)
    assert outcome.detail.startswith("1 new item(s), fewer than the minimum of 3")
    [note] = (loaded_app.settings.path(loaded_app.settings.outbox_dir) / "issue-0").glob("*.eml")
    body = message_from_bytes(note.read_bytes(), policy=policy.default).get_body(
        ("plain",)).get_content()
    assert "Er is 1 nieuw onderdeel, minder dan het minimum van 3" in body


def test_a_held_issue_is_not_sent_until_released(loaded_app):
    proof_time = datetime(2026, 12, 2, 14, 0, tzinfo=AMS)
    runner = runner_at(loaded_app, proof_time)
    proofed = runner.run(spec(runner, "proof"), proof_time)
    assert proofed.status is RunStatus.DONE, proofed.detail
    issue_id = proofed.detail and runner_issue(loaded_app)
    proof_mails = list((loaded_app.settings.path(loaded_app.settings.outbox_dir))
                       .glob(f"issue-{issue_id}/*.eml"))
    assert [p.name.split("-", 1)[1] for p in proof_mails] == ["redactie@platformjep.example.nl.eml"]
    subject = message_from_bytes(proof_mails[0].read_bytes(), policy=policy.default)["Subject"]
    assert subject.startswith("[TEST] WeerbaarNL nr. 1")
    assert notes(loaded_app) == ["Proef van nummer 1 verstuurd"]

    with loaded_app.engine.begin() as conn:
        assert hold_issue(conn, issue_id, "wacht op correctie")
        assert not hold_issue(conn, issue_id)  # holding twice is harmless
    runner = runner_at(loaded_app, THURSDAY_NINE)
    held = runner.run(spec(runner, "newsletter"), THURSDAY_NINE)
    assert held.status is RunStatus.HELD and sent_rows(loaded_app) == 0
    # `mailer send` and `mailer issues resume` go through send_issue, which refuses too.
    from mailer.sending import IssueHeld, send_issue, store_issue
    with pytest.raises(IssueHeld, match="held by the editors"):
        send_issue(loaded_app, store_issue(loaded_app, THURSDAY_NINE), resume=True)
    assert sent_rows(loaded_app) == 0
    assert "Nieuwsbrief nr. 1 is tegengehouden" in notes(loaded_app)

    with loaded_app.engine.begin() as conn:
        release_issue(conn, issue_id)
        with pytest.raises(IssueStateError, match="not held"):
            release_issue(conn, issue_id)
    # The scheduler does not retry a held run by itself; a manual run sends it.
    auto = runner.run(spec(runner, "newsletter"), THURSDAY_NINE)
    assert not auto.ran and auto.status is RunStatus.HELD
    manual = runner.run(spec(runner, "newsletter"), THURSDAY_NINE, manual=True)
    assert manual.status is RunStatus.DONE and sent_rows(loaded_app) == 12
    with loaded_app.engine.begin() as conn, pytest.raises(IssueStateError, match="is sent"):
        hold_issue(conn, issue_id)


def runner_issue(app: App) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(issues.c.id)).scalar_one()


def test_a_run_missed_within_the_grace_period_runs_at_start_up(loaded_app):
    with loaded_app.engine.begin() as conn:
        job_store.advance_coverage(conn, "newsletter", THURSDAY_NINE - timedelta(days=1),
                                   THURSDAY_NINE)
    start = THURSDAY_NINE + timedelta(hours=5, minutes=59)
    runner = runner_at(loaded_app, start)
    due = dict((s.id, f) for s, f in runner.catch_up(start))
    assert due["newsletter"] == THURSDAY_NINE
    outcome = runner.run(spec(runner, "newsletter"), due["newsletter"])
    assert outcome.status is RunStatus.DONE and sent_rows(loaded_app) == 12
    with loaded_app.engine.connect() as conn:
        assert job_store.covered_until(conn, "newsletter") == THURSDAY_NINE
    assert "newsletter" not in dict((s.id, f) for s, f in runner.catch_up(start))


def test_a_run_missed_beyond_the_grace_period_is_skipped_and_reported(loaded_app):
    with loaded_app.engine.begin() as conn:
        job_store.advance_coverage(conn, "newsletter", THURSDAY_NINE - timedelta(days=1),
                                   THURSDAY_NINE)
    start = THURSDAY_NINE + timedelta(hours=6, minutes=1)
    runner = runner_at(loaded_app, start)
    assert "newsletter" not in [s.id for s, _ in runner.catch_up(start)]
    with loaded_app.engine.connect() as conn:
        run = job_store.run_by_key(conn, "newsletter", "2026-W49")
    assert run.status is RunStatus.MISSED and "beyond the grace period" in run.detail
    assert notes(loaded_app) == ["Planner: newsletter van donderdag 3 december 2026 overgeslagen"]
    assert sent_rows(loaded_app) == 0 and issue_count(loaded_app) == 0
    # A second scheduler starting now reports nothing new; the next Thursday runs normally.
    runner_at(loaded_app, start, owner="other-host:9").catch_up(start)
    assert len(notes(loaded_app)) == 1
    next_week = THURSDAY_NINE + timedelta(weeks=1, minutes=30)
    due = dict((s.id, f) for s, f in runner_at(loaded_app, next_week).catch_up(next_week))
    assert due["newsletter"] == THURSDAY_NINE + timedelta(weeks=1)


def test_a_fire_time_the_running_scheduler_reached_too_late_is_reported(loaded_app):
    # APScheduler runs on the machine's clock: a fire time a day ago is far beyond the
    # newsletter's six hours of grace, as after a long suspend of a running scheduler.
    late = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    runner = runner_at(loaded_app, late + timedelta(days=1))
    process = SchedulerProcess(runner.app, list(runner.specs.values()), threading.Event())
    process.runner = runner
    reported = threading.Event()

    def on_missed(event):
        process.on_missed(event)
        reported.set()

    scheduler = build_scheduler(list(runner.specs.values()), lambda spec: None)
    scheduler.add_listener(on_missed, EVENT_JOB_MISSED)
    scheduler.start(paused=True)
    try:
        scheduler.modify_job("newsletter", next_run_time=late)
        scheduler.resume()
        assert reported.wait(30), "APScheduler never reported the late fire time"
    finally:
        scheduler.shutdown()
    with loaded_app.engine.connect() as conn:
        run = job_store.run_by_key(conn, "newsletter", period_key(spec(runner, "newsletter"),
                                                                  late))
    assert run.status is RunStatus.MISSED and run.fire_time == late
    assert notes(loaded_app) == [f"Planner: newsletter van {long_date(late)} overgeslagen"]
    assert sent_rows(loaded_app) == 0


def test_weeks_of_downtime_coalesce_into_one_run(loaded_app):
    with loaded_app.engine.begin() as conn:
        job_store.advance_coverage(conn, "newsletter", THURSDAY_NINE - timedelta(weeks=4),
                                   THURSDAY_NINE)
    start = THURSDAY_NINE + timedelta(minutes=20)
    due = [(s.id, f) for s, f in runner_at(loaded_app, start).catch_up(start)]
    assert [f for job, f in due if job == "newsletter"] == [THURSDAY_NINE]
    with loaded_app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_runs)).scalar() == 0


def test_a_long_downtime_of_a_frequent_job_is_not_logged_as_exactly_the_cap(app, caplog):
    start = THURSDAY_NINE + timedelta(minutes=5)
    with app.engine.begin() as conn:  # nine days without a scheduler: 1,296 ten-minute runs
        job_store.advance_coverage(conn, "retry-failed", start - timedelta(days=9), start)
    with caplog.at_level("WARNING", logger="mailer.scheduler"):
        runner_at(app, start).catch_up(start)
    [line] = [r.getMessage() for r in caplog.records if "retry-failed" in r.getMessage()]
    assert "1000 or more run(s) missed" in line


def test_a_first_start_catches_up_nothing(app):
    now = THURSDAY_NINE + timedelta(hours=1)
    assert runner_at(app, now).catch_up(now) == []
    with app.engine.connect() as conn:
        assert job_store.covered_until(conn, "newsletter") == now


@pytest.mark.parametrize("local", [datetime(2026, 3, 29, 5, 0), datetime(2026, 10, 25, 5, 0)])
def test_missed_runs_across_a_dst_night(app, local, tmp_path):
    start = local.replace(tzinfo=AMS)
    with app.engine.begin() as conn:
        job_store.advance_coverage(conn, "purge-pending", start - timedelta(days=1), start)
    due = dict((s.id, f) for s, f in runner_at(app, start).catch_up(start))
    assert due["purge-pending"].astimezone(AMS).strftime("%m-%d %H:%M") == \
        start.strftime("%m-%d 04:15")


def test_a_failing_job_is_recorded_mails_the_editors_once_and_may_be_retried(app, tmp_path):
    broken = tmp_path / "verdwenen-content"  # the content folder is gone: the source fails
    app = app.with_settings(content_dir=broken)
    runner = runner_at(app, THURSDAY_NINE)
    sync = spec(runner, "sync-content")
    first = runner.run(sync, THURSDAY_NINE)
    second = runner.run(sync, THURSDAY_NINE + timedelta(hours=1))
    assert first.status is second.status is RunStatus.FAILED
    assert len(notes(app)) == 1 and notes(app)[0] == "Planner: taak sync-content is mislukt"
    body = next((app.settings.path(app.settings.outbox_dir) / "issue-0").glob("*.eml")).read_text()
    assert "Bron local kon niet worden gelezen" in body and "verdwenen-content" in body
    # A failed run stays open: a restart within the grace period tries it again.
    with app.engine.connect() as conn:
        assert job_store.covered_until(conn, "sync-content") < THURSDAY_NINE + timedelta(hours=1)
    retry = runner_at(app, THURSDAY_NINE + timedelta(hours=1), owner="restarted:3")
    assert retry.run(sync, THURSDAY_NINE + timedelta(hours=1)).ran


def test_a_broken_source_is_named_to_the_editors_in_dutch_and_the_rest_still_syncs(app,
                                                                                  tmp_path):
    # The note quoted the Python exception ("TaskFailed: source(s) failed: ...") with code
    # locations ("at tasks.py:229 run_sync <- scheduler.py:98 _run_task"): nothing an
    # editor can act on, nor does it say what the failure means for the newsletter.
    feed = tmp_path / "afgebroken.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
                    "<item><title>Half", encoding="utf-8")
    sources = tmp_path / "sources.toml"
    sources.write_text(f"""
[[sources]]
name = "local"
kind = "markdown"
location = "{app.settings.path(app.settings.content_dir)}"

[[sources]]
name = "partner-feed"
kind = "feed"
location = "{feed}"
""", encoding="utf-8")
    app = app.with_settings(sources_file=sources)
    runner = runner_at(app, THURSDAY_NINE)
    outcome = runner.run(spec(runner, "sync-content"), THURSDAY_NINE)
    assert outcome.status is RunStatus.FAILED
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(items)).scalar() > 0
    body = message_from_bytes(
        next((app.settings.path(app.settings.outbox_dir) / "issue-0").glob("*.eml")).read_bytes(),
        policy=policy.default).get_body(("plain",)).get_content()
    assert ("Bron partner-feed kon niet worden gelezen: afgebroken feed: "
            f"{feed.as_uri()} houdt halverwege op") in body
    assert "truncated" not in body and "<unknown>" not in body
    assert "de nieuwsbrief gaat gewoon uit" in body
    assert "mailer content check partner-feed" in body
    assert "TaskFailed" not in body and ".py:" not in body and "local" not in body
    assert "TaskFailed" not in outcome.detail and "partner-feed" in outcome.detail
    assert "afgebroken.xml: feed is truncated" in outcome.detail  # the operators' line


def test_a_run_owned_by_a_live_process_is_left_alone(loaded_app):
    import os
    import socket

    live = f"{socket.gethostname()}:{os.getppid()}"
    with loaded_app.engine.begin() as conn:
        job_store.claim_run(conn, job_id="newsletter", period_key="2026-W49", task="newsletter",
                            fire_time=THURSDAY_NINE, owner=live, now=datetime.now(UTC),
                            lease=timedelta(minutes=10), manual=False,
                            owner_is_dead=lambda _: False)
    runner = runner_at(loaded_app, THURSDAY_NINE)
    outcome = runner.run(spec(runner, "newsletter"), THURSDAY_NINE, manual=True)
    assert not outcome.ran and outcome.status is RunStatus.RUNNING
    assert sent_rows(loaded_app) == 0
    assert period_key(spec(runner, "sync-content"), THURSDAY_NINE) == "2026-12-03T08:00:00+00:00"


def test_the_purge_job_erases_stale_pending_subscriptions(app):
    from mailer.models import Preferences, SubscriberStatus
    from mailer.store import subscribers as subs

    with app.engine.begin() as conn:
        old = subs.add_subscriber(conn, email="oud@example.org", name="", status=
                                  SubscriberStatus.PENDING, preferences=Preferences(),
                                  source="test", now=THURSDAY_NINE - timedelta(days=31))
        new = subs.add_subscriber(conn, email="nieuw@example.org", name="", status=
                                  SubscriberStatus.PENDING, preferences=Preferences(),
                                  source="test", now=THURSDAY_NINE - timedelta(days=2))
    runner = runner_at(app, THURSDAY_NINE)
    outcome = runner.run(spec(runner, "purge-pending"), THURSDAY_NINE)
    assert outcome.status is RunStatus.DONE and outcome.detail == "purged 1 unconfirmed " \
        "subscription(s)"
    with app.engine.connect() as conn:
        assert subs.subscriber_by_id(conn, old.id).status is SubscriberStatus.ERASED
        assert subs.subscriber_by_id(conn, new.id).status is SubscriberStatus.PENDING


def test_retry_failed_finishes_recent_unfinished_sends_only(loaded_app):
    from mailer.sending import enqueue, store_issue

    issue = store_issue(loaded_app, THURSDAY_NINE)
    enqueue(loaded_app, issue)  # a send that stopped right after enqueueing
    stale = runner_at(loaded_app, THURSDAY_NINE + timedelta(hours=25))
    too_late = stale.run(spec(stale, "retry-failed"), stale.app.clock.now())
    assert too_late.detail == "no issue is being sent" and sent_rows(loaded_app) == 0
    runner = runner_at(loaded_app, THURSDAY_NINE + timedelta(minutes=10))
    outcome = runner.run(spec(runner, "retry-failed"), runner.app.clock.now())
    assert outcome.status is RunStatus.DONE and "finished" in outcome.detail
    assert sent_rows(loaded_app) == 12


def test_a_week_that_was_proofed_but_not_sent_leaves_no_gap_in_the_numbering(loaded_app):
    first = runner_at(loaded_app, THURSDAY_NINE)
    assert first.run(spec(first, "newsletter"), THURSDAY_NINE).status is RunStatus.DONE
    # Week 50: the proof goes out (a draft nr. 2 is stored), then too little for the minimum.
    proof_time = datetime(2026, 12, 9, 14, 0, tzinfo=AMS)
    proof = runner_at(loaded_app, proof_time)
    assert proof.run(spec(proof, "proof"), proof_time).status is RunStatus.DONE
    thursday = THURSDAY_NINE + timedelta(weeks=1)
    skipped = runner_at(loaded_app, thursday)
    assert skipped.run(spec(skipped, "newsletter"), thursday).status is RunStatus.SKIPPED
    # Week 51 goes out (no minimum): subscribers got nr. 1, so this is nr. 2, not nr. 3.
    next_week = THURSDAY_NINE + timedelta(weeks=2)
    runner = runner_at(loaded_app, next_week)
    job = replace(spec(runner, "newsletter"),
                  options={**spec(runner, "newsletter").options, "min_items": 1})
    outcome = runner.run(job, next_week)
    assert outcome.status is RunStatus.DONE, outcome.detail
    with loaded_app.engine.connect() as conn:
        sent = conn.execute(select(issues.c.number, issues.c.subject)
                            .where(issues.c.status == "sent").order_by(issues.c.id)).all()
    assert [number for number, _ in sent] == [1, 2]
    assert sent[1].subject.startswith("WeerbaarNL nr. 2:")


def test_with_enqueue_only_the_run_says_the_workers_send_it(loaded_app):
    from mailer.settings import with_overrides

    loaded_app.settings = with_overrides(loaded_app.settings, enqueue_only=True)
    runner = runner_at(loaded_app, THURSDAY_NINE)
    outcome = runner.run(spec(runner, "newsletter"), THURSDAY_NINE)
    assert outcome.status is RunStatus.DONE and sent_rows(loaded_app) == 0
    # Nothing was tried yet, so nothing is "pending a retry": the workers take it from here.
    assert "queued 12" in outcome.detail and "retries pending" not in outcome.detail
    assert outcome.detail.endswith("; queued for the workers (mailer worker)")
