"""Enqueue in subscriber ranges: the same rows as one statement, resumable after a crash,
and never drained before the outbox is complete; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from population import add_subscribers
from sqlalchemy import delete, select, update

from mailer.compose import issue_moment
from mailer.delivery.worker import Worker, WorkerOptions
from mailer.models import IssueStatus, SubscriberStatus
from mailer.sending import enqueue, fill_outbox, store_issue
from mailer.store import issue_control, outbox_fill, workload
from mailer.store import issues as issue_store
from mailer.store.tables import outbox, subscribers

ROW = (outbox.c.subscriber_id, outbox.c.email, outbox.c.segment_key, outbox.c.status,
       outbox.c.attempts, outbox.c.message_id, outbox.c.possible_duplicate)


def stored_issue(app):
    return store_issue(app, issue_moment(app.settings, app.clock, date(2026, 12, 3)))


def with_more_subscribers(app, count: int = 40) -> int:
    """Add subscribers after the sample ones, a few of them not active; returns how many
    subscribers are active in all."""
    add_subscribers(app.engine, count, app.clock.now(), start=1000)
    with app.engine.begin() as conn:
        conn.execute(update(subscribers).where(subscribers.c.id % 7 == 0)
                     .values(status=SubscriberStatus.UNSUBSCRIBED.value))
        active = subscribers.c.status == SubscriberStatus.ACTIVE.value
        return len(conn.execute(select(subscribers.c.id).where(active)).all())


def outbox_rows(app, issue_id: int) -> list[tuple]:
    with app.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(*ROW).where(outbox.c.issue_id == issue_id).order_by(outbox.c.subscriber_id))]


def test_ranges_cover_every_active_subscriber_once_and_the_last_is_open(loaded_app):
    active = with_more_subscribers(loaded_app)
    with loaded_app.engine.connect() as conn:
        ranges = outbox_fill.active_subscriber_ranges(conn, 5)
        ids = conn.execute(select(subscribers.c.id).where(
            subscribers.c.status == SubscriberStatus.ACTIVE.value)).scalars().all()
    assert ranges[0].after < min(ids) and ranges[-1].upto >= 2**31 - 1
    assert all(a.upto == b.after for a, b in zip(ranges, ranges[1:], strict=False))
    assert all(r.upto - r.after == 5 for r in ranges[:-1])
    per_range = [sum(r.after < i <= r.upto for i in ids) for r in ranges]
    assert sum(per_range) == active and len(ranges) > 5


def test_no_active_subscriber_means_no_range(app):
    with app.engine.connect() as conn:
        assert outbox_fill.active_subscriber_ranges(conn, 5) == []


def test_filling_in_ranges_gives_the_same_rows_as_one_statement(loaded_app):
    active = with_more_subscribers(loaded_app)
    issue = stored_issue(loaded_app)
    now = loaded_app.clock.now()
    added = fill_outbox(loaded_app, issue.id, now, range_size=4, connections=2)
    in_ranges = outbox_rows(loaded_app, issue.id)
    with loaded_app.engine.begin() as conn:
        conn.execute(delete(outbox))
        at_once = outbox_fill.enqueue_issue(conn, issue.id, loaded_app.message_domain, now)
    assert added == at_once == active == len(in_ranges)
    assert in_ranges == outbox_rows(loaded_app, issue.id)
    assert fill_outbox(loaded_app, issue.id, now, range_size=4, connections=2) == 0


def test_a_crash_mid_enqueue_is_not_drained_and_sending_again_finishes_it(loaded_app):
    active = with_more_subscribers(loaded_app)
    issue = stored_issue(loaded_app)
    now = loaded_app.clock.now()
    with loaded_app.engine.begin() as conn:  # as the scheduler's send job begins a send
        assert issue_control.begin_send(conn, issue.id, now) is IssueStatus.SENDING
        first = outbox_fill.active_subscriber_ranges(conn, 5)[0]
        assert outbox_fill.enqueue_issue(conn, issue.id, loaded_app.message_domain, now, first) == 5
    # ... and the process dies here: the outbox holds one range of rows.
    with loaded_app.engine.connect() as conn:
        assert workload.sending_issue_ids(conn) == []
    assert Worker(loaded_app, WorkerOptions(once=True)).run().sent == 0
    with loaded_app.engine.connect() as conn:
        assert issue_store.issue_by_id(conn, issue.id).status is IssueStatus.SENDING

    assert enqueue(loaded_app, issue) == active - 5
    with loaded_app.engine.connect() as conn:
        assert workload.sending_issue_ids(conn) == [issue.id]
    assert Worker(loaded_app, WorkerOptions(once=True)).run().sent == active
    with loaded_app.engine.connect() as conn:
        assert issue_store.issue_by_id(conn, issue.id).status is IssueStatus.SENT


def test_a_range_partly_filled_by_another_enqueuer_is_completed_without_duplicates(
        loaded_app, monkeypatch):
    active = with_more_subscribers(loaded_app)
    issue = stored_issue(loaded_app)
    now = loaded_app.clock.now()
    with loaded_app.engine.begin() as conn:
        whole = outbox_fill.IdRange(0, 2**31 - 1)
        half = outbox_fill.IdRange(0, conn.execute(select(subscribers.c.id).order_by(
            subscribers.c.id).offset(active // 2).limit(1)).scalar())
        first = outbox_fill.enqueue_range(conn, issue.id, loaded_app.message_domain, now, half)
        assert outbox_fill.range_started(conn, issue.id, whole)
    # Another enqueuer's rows, committed after this one looked: the plain INSERT meets
    # them at the unique index, and the range is redone skipping them.
    monkeypatch.setattr(outbox_fill, "range_started", lambda *args: False)
    with loaded_app.engine.begin() as conn:
        rest = outbox_fill.enqueue_range(conn, issue.id, loaded_app.message_domain, now, whole)
    in_two_goes = outbox_rows(loaded_app, issue.id)
    assert first + rest == active == len(in_two_goes)
    with loaded_app.engine.begin() as conn:
        conn.execute(delete(outbox))
        outbox_fill.enqueue_issue(conn, issue.id, loaded_app.message_domain, now)
    assert in_two_goes == outbox_rows(loaded_app, issue.id)


def test_two_sends_rendering_the_same_segments_at_once_both_go_on(loaded_app, monkeypatch):
    """Two `mailer send` of one issue at once both find its segments unrendered; the one
    that stores a rendering second must go on with the stored one, not crash."""
    issue = stored_issue(loaded_app)
    render = loaded_app.renderer.render
    other_send: list[int] = []

    def render_while_another_send_enqueues(*args, **kwargs):
        monkeypatch.setattr(loaded_app.renderer, "render", render)
        # The other send renders and stores the segment meanwhile.
        other_send.append(enqueue(loaded_app, issue))
        return render(*args, **kwargs)

    monkeypatch.setattr(loaded_app.renderer, "render", render_while_another_send_enqueues)
    assert enqueue(loaded_app, issue) == 12 and other_send == [0]
    with loaded_app.engine.connect() as conn:
        assert outbox_fill.unrendered_segments(conn, issue.id) == []
    assert Worker(loaded_app, WorkerOptions(once=True)).run().sent == 12


def test_workers_do_not_drain_an_issue_before_its_segments_are_rendered(loaded_app,
                                                                        monkeypatch):
    """Workers drain only enqueued issues; an issue was marked enqueued before its
    segments were rendered (and empty ones skipped), so a worker could find a row without
    a rendering, or send a row that was about to be skipped."""
    issue = stored_issue(loaded_app)

    def crash(*args, **kwargs):
        raise RuntimeError("the process dies while rendering")

    monkeypatch.setattr(loaded_app.renderer, "render", crash)
    with loaded_app.engine.begin() as conn:
        issue_control.begin_send(conn, issue.id, loaded_app.clock.now())
    with pytest.raises(RuntimeError):
        enqueue(loaded_app, issue)
    with loaded_app.engine.connect() as conn:
        assert workload.sending_issue_ids(conn) == []
    monkeypatch.undo()
    enqueue(loaded_app, issue)  # sending again renders the rest, then lets the workers in
    with loaded_app.engine.connect() as conn:
        assert workload.sending_issue_ids(conn) == [issue.id]
