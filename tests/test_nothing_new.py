"""No issue for a segment with nothing new: everything it would get was in an earlier
issue. Sends skip such segments with a reason, the scheduler skips a week with nothing
new for anyone, and an editor can send anyway. Real databases, the file provider."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from mailer.compose import issue_moment
from mailer.models import IssueStatus, ItemStatus, Preferences, SubscriberStatus
from mailer.render.newsletter import select_for
from mailer.sending import NothingNewForAnyone, enqueue, segment_plans, send_issue, store_issue
from mailer.store import issues as issue_store
from mailer.store import outbox_fill
from mailer.store.jobs import RunStatus
from mailer.store.tables import issues, items, outbox, subscribers
from tests.test_scheduler_runs import notes, runner_at, spec

AMS = ZoneInfo("Europe/Amsterdam")
WEEK_49 = datetime(2026, 12, 3, 9, 0, tzinfo=AMS).astimezone(UTC)
WEEK_50 = WEEK_49 + timedelta(weeks=1)
WEEK_51 = WEEK_49 + timedelta(weeks=2)
# Issue 1 (week 49) carried every event; week 50 adds one: a training in Rotterdam for
# jongerenwerk, onderwijs and civil-society. These readers get only events of issue 1.
NOTHING_NEW = {"r.vandijk@example.org", "j.smit@example.org", "t.dekker@example.org"}
NOTHING_AT_ALL = {"s.devries@example.org", "e.vandenberg@example.org"}  # magazine only


def issue_of(app, on: date):
    return store_issue(app, issue_moment(app.settings, app.clock, on))


def first_issue_sent(app) -> None:
    result = send_issue(app, issue_of(app, date(2026, 12, 3)))
    assert result.finished and result.counts["sent"] == 12


def keep_only_readers_without_news(app) -> None:
    """Unsubscribe everyone but the readers the week-50 news (the Rotterdam training) is
    not for."""
    with app.engine.begin() as conn:
        conn.execute(update(subscribers).where(subscribers.c.email.not_in(NOTHING_NEW))
                     .values(status=SubscriberStatus.UNSUBSCRIBED.value))


def rows_by_email(app, issue_id: int) -> dict:
    with app.engine.connect() as conn:
        return {r.email: r for r in conn.execute(select(outbox).where(
            outbox.c.issue_id == issue_id))}


def test_a_segment_with_nothing_new_is_skipped_with_a_reason_an_editor_reads(loaded_app):
    first_issue_sent(loaded_app)
    second = issue_of(loaded_app, date(2026, 12, 10))
    result = send_issue(loaded_app, second)
    assert result.finished
    assert result.counts["sent"] == 7 and result.counts["skipped"] == 5
    rows = rows_by_email(loaded_app, second.id)
    assert {e for e, r in rows.items() if r.status == "skipped"} == NOTHING_NEW | NOTHING_AT_ALL
    assert {rows[e].last_error for e in NOTHING_NEW} == {outbox_fill.NOTHING_NEW_FOR_SEGMENT}
    assert outbox_fill.NOTHING_NEW_FOR_SEGMENT == (
        "niet verstuurd: niets nieuws voor de gekozen onderdelen en thema's "
        "(alles stond al in een eerder nummer)")
    assert {rows[e].last_error for e in NOTHING_AT_ALL} == {outbox_fill.NOTHING_FOR_SEGMENT}
    with loaded_app.engine.connect() as conn:
        assert outbox_fill.skip_reasons(conn, second.id) == {outbox_fill.NOTHING_NEW_FOR_SEGMENT: 3,
                                                      outbox_fill.NOTHING_FOR_SEGMENT: 2}


def test_the_plan_says_per_segment_what_a_send_will_skip(loaded_app):
    first_issue_sent(loaded_app)
    second = issue_of(loaded_app, date(2026, 12, 10))
    plans = {p.key: p for p in segment_plans(loaded_app, second)}
    managers = plans["s=agenda;t=bestuurders,gemeente-en-veiligheid"]
    assert managers.items > 0 and managers.new == 0
    assert managers.skip_reason == outbox_fill.NOTHING_NEW_FOR_SEGMENT
    everything = plans["s=agenda,magazine;t="]
    assert everything.new == 1 and everything.skip_reason is None
    anyway = {p.key: p for p in segment_plans(loaded_app, second, even_without_news=True)}
    assert anyway[managers.key].skip_reason is None
    assert anyway["s=magazine;t=onderwijs"].skip_reason == outbox_fill.NOTHING_FOR_SEGMENT
    # The plan and the send agree: who is planned to be skipped is skipped.
    send_issue(loaded_app, second)
    rows = rows_by_email(loaded_app, second.id)
    with loaded_app.engine.connect() as conn:
        segment_of = dict(conn.execute(
            select(subscribers.c.email, subscribers.c.segment_key)).all())
    assert {e for e, r in rows.items() if r.status == "skipped"} == {
        e for e, key in segment_of.items() if plans[key].skip_reason}


def test_even_without_news_sends_every_segment_that_gets_something_also_on_resume(loaded_app):
    first_issue_sent(loaded_app)
    second = issue_of(loaded_app, date(2026, 12, 10))
    with loaded_app.engine.begin() as conn:  # as the scheduler begins a send
        issue_store.set_issue_status(conn, second.id, IssueStatus.SENDING, loaded_app.clock.now())
    enqueue(loaded_app, second, even_without_news=True)
    # ... the process stops here; the retry job (or `issues resume`) knows no flag.
    result = send_issue(loaded_app, second, resume=True)
    assert result.finished and result.counts["sent"] == 10 and result.counts["skipped"] == 2
    rows = rows_by_email(loaded_app, second.id)
    assert all(rows[e].status == "sent" for e in NOTHING_NEW)


def test_an_issue_with_nothing_new_for_anyone_is_not_sent_nor_numbered(loaded_app):
    first_issue_sent(loaded_app)
    keep_only_readers_without_news(loaded_app)
    second = issue_of(loaded_app, date(2026, 12, 10))
    assert second is not None  # the issue does hold news, for nobody who reads it
    with pytest.raises(NothingNewForAnyone, match="nothing new for any subscriber"):
        send_issue(loaded_app, second)
    with loaded_app.engine.connect() as conn:
        assert issue_store.issue_by_id(conn, second.id).status is IssueStatus.DRAFT
        assert issue_store.next_number(conn, loaded_app.settings.list_id) == 2
    assert rows_by_email(loaded_app, second.id) == {}
    anyway = send_issue(loaded_app, second, even_without_news=True)
    assert anyway.finished and anyway.counts["sent"] == 3


def test_moved_or_cancelled_events_an_earlier_issue_announced_are_no_news(loaded_app):
    """The choice: a moved or cancelled event shows as such in the next issue that goes
    out, but does not make an issue by itself; an event is news once."""
    first_issue_sent(loaded_app)
    second = issue_of(loaded_app, date(2026, 12, 10))
    managers = "s=agenda;t=bestuurders,gemeente-en-veiligheid"
    theirs = {p.key: p for p in segment_plans(loaded_app, second)}[managers]
    assert theirs.items >= 2 and theirs.new == 0
    _, agenda = select_for(second, Preferences.from_key(managers))
    roadshow, other = agenda[:2]
    with loaded_app.engine.begin() as conn:
        conn.execute(update(items).where(items.c.id == roadshow.id).values(
            starts_at=roadshow.item.starts_at + timedelta(days=7),
            ends_at=roadshow.item.ends_at + timedelta(days=7) if roadshow.item.ends_at else None))
        conn.execute(update(items).where(items.c.id == other.id)
                     .values(status=ItemStatus.CANCELLED.value))
    changed = issue_of(loaded_app, date(2026, 12, 10))
    after = {p.key: p for p in segment_plans(loaded_app, changed)}[managers]
    assert after.new == 0 and after.skip_reason == outbox_fill.NOTHING_NEW_FOR_SEGMENT
    # A new event for them is news.
    fresh = replace(changed, announced=changed.announced - {roadshow.id})
    assert {p.key: p for p in segment_plans(loaded_app, fresh)}[managers].new == 1


def test_the_scheduler_skips_a_week_with_nothing_new_for_anyone_and_numbers_on(loaded_app):
    first = runner_at(loaded_app, WEEK_49)
    assert first.run(spec(first, "newsletter"), WEEK_49).status is RunStatus.DONE
    keep_only_readers_without_news(loaded_app)
    runner = runner_at(loaded_app, WEEK_50)
    job = replace(spec(runner, "newsletter"),
                  options={**spec(runner, "newsletter").options, "min_items": 1})
    outcome = runner.run(job, WEEK_50)
    assert outcome.status is RunStatus.SKIPPED
    assert outcome.detail == "nothing new for any subscriber's segment: no issue"
    assert notes(loaded_app) == ["Geen nieuwsbrief op donderdag 10 december 2026 om 9.00 uur"]
    note = note_text(loaded_app)
    assert "niet voor de onderdelen en thema's die de abonnees hebben gekozen" in note
    assert "mailer send --date 2026-12-10 --even-without-news" in note
    # Once per period: a second attempt that week finds the run done.
    again = runner_at(loaded_app, WEEK_50 + timedelta(hours=1)).run(job, WEEK_50)
    assert not again.ran and again.status is RunStatus.SKIPPED
    # Week 51 someone reads everything again: the issue goes out as nr. 2, not nr. 3.
    with loaded_app.engine.begin() as conn:
        conn.execute(update(subscribers).where(subscribers.c.email == "a.jansen@example.org")
                     .values(status=SubscriberStatus.ACTIVE.value))
    later = runner_at(loaded_app, WEEK_51)
    assert later.run(job, WEEK_51).status is RunStatus.DONE
    with loaded_app.engine.connect() as conn:
        sent = conn.execute(select(issues.c.number, issues.c.period).where(
            issues.c.status == "sent").order_by(issues.c.id)).all()
    assert [tuple(r) for r in sent] == [(1, "2026-W49"), (2, "2026-W51")]


def test_a_job_with_even_without_news_sends_also_without_news(loaded_app):
    first = runner_at(loaded_app, WEEK_49)
    assert first.run(spec(first, "newsletter"), WEEK_49).status is RunStatus.DONE
    runner = runner_at(loaded_app, WEEK_50)
    job = replace(spec(runner, "newsletter"), options={
        **spec(runner, "newsletter").options, "min_items": 1, "even_without_news": True})
    outcome = runner.run(job, WEEK_50)
    assert outcome.status is RunStatus.DONE, outcome.detail
    assert "sent 10" in outcome.detail
    with loaded_app.engine.connect() as conn:
        assert issue_store.issue_by_period(conn, loaded_app.settings.list_id,
                                           "2026-W50").even_without_news


def test_the_proof_warns_when_the_issue_would_reach_nobody(loaded_app):
    first = runner_at(loaded_app, WEEK_49)
    assert first.run(spec(first, "newsletter"), WEEK_49).status is RunStatus.DONE
    keep_only_readers_without_news(loaded_app)
    proof_time = datetime(2026, 12, 9, 14, 0, tzinfo=AMS)
    proof = runner_at(loaded_app, proof_time)
    assert proof.run(spec(proof, "proof"), proof_time).status is RunStatus.DONE
    assert "geen abonnee krijgt hierin iets nieuws" in note_text(loaded_app, "Proef van")


def note_text(app, subject_start: str = "Geen nieuwsbrief") -> str:
    from email import message_from_bytes, policy

    folder = app.settings.path(app.settings.outbox_dir) / "issue-0"
    for path in folder.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["Subject"].startswith(subject_start):
            return message.get_body(("plain",)).get_content()
    raise AssertionError(f"no note starting {subject_start!r}")


def test_a_rendering_from_before_migration_0014_is_never_skipped_for_no_news(loaded_app):
    """A send begun before the upgrade resumes with renderings whose new count is
    unknown (NULL): those segments go out as the first run meant them to."""
    from mailer.render.newsletter import segment_counts
    from mailer.sending import fill_outbox

    first_issue_sent(loaded_app)
    second = issue_of(loaded_app, date(2026, 12, 10))
    now = loaded_app.clock.now()
    fill_outbox(loaded_app, second.id, now)
    with loaded_app.engine.begin() as conn:
        for key in outbox_fill.unrendered_segments(conn, second.id):
            items_count = segment_counts(second, Preferences.from_key(key)).item_count
            outbox_fill.save_render(conn, second.id, key, "s", "<p>h</p>", "t",
                                    (items_count, None), now)
        assert outbox_fill.skip_segments_without_news(conn, second.id, now) == 2
        assert outbox_fill.skip_reasons(conn, second.id) == {outbox_fill.NOTHING_FOR_SEGMENT: 2}


def test_a_send_reads_the_stored_issue_once_before_it_fills_the_outbox(loaded_app,
                                                                       monkeypatch):
    """The checks before a send (held? paused? anything new?) share one read of it."""
    import mailer.sending as sending

    issue = issue_of(loaded_app, date(2026, 12, 3))
    reads: list[int] = []
    read = issue_store.issue_by_id
    monkeypatch.setattr(issue_store, "issue_by_id",
                        lambda conn, issue_id: reads.append(issue_id) or read(conn, issue_id))

    class Enqueuing(Exception):
        pass

    def enqueue_stopped(*args, **kwargs):
        raise Enqueuing

    monkeypatch.setattr(sending, "enqueue", enqueue_stopped)
    with pytest.raises(Enqueuing):
        send_issue(loaded_app, issue)
    assert reads == [issue.id]
