"""The worker loop and the store pieces it relies on, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from mailer.compose import issue_moment
from mailer.delivery.worker import IdleBackoff, Worker, WorkerOptions
from mailer.models import IssueStatus, OutboxStatus
from mailer.sending import enqueue, store_issue
from mailer.store import issues as issue_store
from mailer.store import outbox as box
from mailer.store import outbox_fill, workload
from mailer.store.outbox import Outcome
from mailer.store.tables import outbox
from tests.delivery_support import PausedMidway, one_segment
from tests.polling import wait_for

LEASE = timedelta(minutes=5)


def enqueued_issue(app):
    issue = store_issue(app, issue_moment(app.settings, app.clock, date(2026, 12, 3)))
    enqueue(app, issue)
    return issue


def test_a_worker_drains_every_sending_issue_and_marks_it_sent(loaded_app):
    issue = enqueued_issue(loaded_app)
    report = Worker(loaded_app, WorkerOptions(once=True)).run()
    with loaded_app.engine.connect() as conn:
        counts = box.status_counts(conn, issue.id)
        status = issue_store.issue_by_id(conn, issue.id).status
    assert report.sent == counts["sent"] == 12
    assert report.finished_issues == {issue.id}
    assert status is IssueStatus.SENT
    with loaded_app.engine.connect() as conn:
        assert workload.sending_issue_ids(conn) == []


def test_a_draft_issue_is_not_touched_by_workers(loaded_app):
    issue = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock,
                                                 date(2026, 12, 3)))
    report = Worker(loaded_app, WorkerOptions(once=True)).run()
    assert report.sent == 0
    with loaded_app.engine.connect() as conn:
        assert issue_store.issue_by_id(conn, issue.id).status is IssueStatus.DRAFT


def test_stranded_rows_are_taken_over_by_one_worker_only(loaded_app):
    issue = enqueued_issue(loaded_app)
    now = loaded_app.clock.now()
    with loaded_app.engine.begin() as conn:
        claimed = box.claim_batch(conn, issue.id, "dead:1/0", 5, now - 2 * LEASE, LEASE)
    with loaded_app.engine.begin() as conn:
        first = box.take_over_stranded(conn, issue.id, "alive:2/0", now, LEASE)
    with loaded_app.engine.begin() as conn:
        second = box.take_over_stranded(conn, issue.id, "alive:3/0", now, LEASE)
    assert [r.id for r in first.rows] == [r.id for r in claimed]
    assert second.rows == []  # the first taker's fresh lease keeps the others off
    with loaded_app.engine.connect() as conn:
        owners = set(conn.execute(select(outbox.c.claimed_by).where(
            outbox.c.id.in_([r.id for r in claimed]))).scalars())
    assert owners == {first.holder} and box.worker_of(first.holder) == "alive:2/0"


def test_a_worker_that_outlived_its_lease_cannot_overwrite_the_new_owner(loaded_app):
    issue = enqueued_issue(loaded_app)
    now = loaded_app.clock.now()
    with loaded_app.engine.begin() as conn:
        [row] = box.claim_batch(conn, issue.id, "slow:1/0", 1, now - 2 * LEASE, LEASE)
        taker = box.take_over_stranded(conn, issue.id, "fast:2/0", now, LEASE).holder
        box.record_outcomes(conn, [Outcome(row.id, OutboxStatus.QUEUED, error="late")], now,
                            worker="slow:1/0")
        status, owner = conn.execute(select(outbox.c.status, outbox.c.claimed_by).where(
            outbox.c.id == row.id)).one()
    assert (status, owner) == (OutboxStatus.SENDING.value, taker)


@dataclass
class MovableClock:
    """A clock the test moves forward by hand."""

    instant: datetime

    def now(self) -> datetime:
        return self.instant


def test_a_worker_waits_for_a_live_lease_then_takes_it_over(loaded_app):
    issue = enqueued_issue(loaded_app)
    clock = MovableClock(loaded_app.clock.now())
    loaded_app.clock = clock
    with loaded_app.engine.begin() as conn:
        held = box.claim_batch(conn, issue.id, "other:1/0", 3, clock.now(), LEASE)
    worker = Worker(loaded_app, WorkerOptions(once=True, idle_min=0.01, idle_max=0.05))
    running = threading.Thread(target=worker.run)
    running.start()

    def sent() -> int:
        with loaded_app.engine.connect() as conn:
            return box.status_counts(conn, issue.id)["sent"]

    wait_for(lambda: sent() == 9, "the live worker sending its rows")
    assert running.is_alive() and worker.report.taken_over == 0  # held rows are not its own
    clock.instant += LEASE + timedelta(seconds=1)
    running.join(timeout=30)
    assert not running.is_alive()
    assert worker.report.taken_over == 3 and worker.report.sent == 12
    with loaded_app.engine.connect() as conn:
        counts = box.status_counts(conn, issue.id)
        owners = set(conn.execute(select(outbox.c.claimed_by).where(
            outbox.c.id.in_([r.id for r in held]))).scalars())
    # The file provider reconciles: the held rows were never written, so no duplicates.
    assert counts["sent"] == 12 and counts["possible_duplicates"] == 0
    assert owners == {None}


def test_a_stop_request_ends_an_idle_worker(loaded_app):
    stop = threading.Event()
    worker = Worker(loaded_app, WorkerOptions(idle_min=30, idle_max=60), stop)
    running = threading.Thread(target=worker.run)
    running.start()
    stop.set()
    running.join(timeout=10)  # far below the 30 s idle sleep: the wait is interruptible
    assert not running.is_alive()


def test_next_wake_is_the_earliest_retry_or_lease_end(loaded_app):
    issue = enqueued_issue(loaded_app)
    now = loaded_app.clock.now()
    with loaded_app.engine.begin() as conn:
        box.claim_batch(conn, issue.id, "w:1/0", 2, now, LEASE)
        conn.execute(update(outbox).where(outbox.c.id == 5).values(
            next_attempt_at=now + timedelta(seconds=30)))
        assert workload.next_wake(conn, [issue.id]) == now + timedelta(seconds=30)
        assert workload.next_wake(conn, []) is None


def test_idle_backoff_doubles_and_is_cut_short_by_known_work():
    idle = IdleBackoff(0.2, 1.0)
    assert [idle.next() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert idle.next(until_wake=0.3) == 0.3
    idle.reset()
    assert idle.next() == 0.2


def test_enqueue_twice_adds_nobody_twice_and_keeps_segments(loaded_app):
    issue = enqueued_issue(loaded_app)
    with loaded_app.engine.begin() as conn:
        again = outbox_fill.enqueue_issue(conn, issue.id, "example.org", loaded_app.clock.now())
        rows = conn.execute(select(outbox.c.segment_key, outbox.c.subscriber_id)).all()
    assert again == 0 and len(rows) == 12
    assert len({key for key, _ in rows}) > 1  # segment keys copied set-based from subscribers


def test_cli_send_enqueue_only_then_worker(loaded_app, settings):
    from mailer.cli import main

    env = {"MAILER_DATABASE_URL": settings.database_url, "MAILER_SECRET_KEY": settings.secret_key,
           "MAILER_NOW": "2026-12-03T09:00", "MAILER_OUTBOX_DIR": str(settings.outbox_dir)}
    runner = CliRunner()
    queued = runner.invoke(main, ["send", "--enqueue-only", "--yes"], env=env)
    assert queued.exit_code == 0, queued.output
    assert "sending, 12 added to the outbox; queued 12" in queued.output
    with loaded_app.engine.connect() as conn:
        [issue_id] = workload.sending_issue_ids(conn)
        assert box.status_counts(conn, issue_id)["sent"] == 0
    drained = runner.invoke(main, ["worker", "--once"], env=env)
    assert drained.exit_code == 0, drained.output
    assert "sent 12, failed 0" in drained.output and "issues finished 1" in drained.output


def test_the_cli_pipeline_runs_on_either_database(app, settings, tmp_path):
    from mailer.cli import main

    env = {"MAILER_DATABASE_URL": settings.database_url, "MAILER_SECRET_KEY": settings.secret_key,
           "MAILER_NOW": "2026-12-03T09:00", "MAILER_OUTBOX_DIR": str(settings.outbox_dir),
           "MAILER_PREVIEW_DIR": str(tmp_path / "preview")}
    runner = CliRunner()
    for args in (["init"], ["content", "sync"], ["preview"], ["lint"], ["send", "--yes"],
                 ["issues", "--help"]):
        result = runner.invoke(main, args, env=env)
        assert result.exit_code == 0, (args, result.output)


def test_worker_refuses_an_unmigrated_database(tmp_path):
    from mailer.cli import main

    env = {"MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
           "MAILER_SECRET_KEY": "k" * 32}
    result = CliRunner().invoke(main, ["worker", "--once"], env=env)
    assert result.exit_code == 1
    assert "database schema is not up to date" in result.output
    assert "run `mailer init` first" in result.output


def test_with_enqueue_only_set_send_issue_queues_and_leaves_it_to_workers(loaded_app):
    from mailer.sending import send_issue
    from mailer.settings import with_overrides

    loaded_app.settings = with_overrides(loaded_app.settings, enqueue_only=True)
    issue = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock,
                                                 date(2026, 12, 3)))
    result = send_issue(loaded_app, issue)
    assert result.enqueued == 12 and result.counts["queued"] == 12 and not result.finished
    report = Worker(loaded_app, WorkerOptions(once=True)).run()
    assert report.sent == 12 and report.finished_issues == {issue.id}


@pytest.mark.parametrize("batch_size, sent", [(4, 4), (12, 12)])
def test_a_pause_by_another_worker_stops_this_one_and_is_kept(loaded_app, batch_size, sent):
    from mailer.settings import with_overrides

    loaded_app.settings = with_overrides(loaded_app.settings, batch_size=batch_size,
                                         concurrency=1)
    issue = enqueued_issue(loaded_app)
    one_segment(loaded_app, issue.id)  # a pause between the calls of one claim: test_delivery
    loaded_app.__dict__["provider"] = PausedMidway(loaded_app, issue.id)
    report = Worker(loaded_app, WorkerOptions(once=True)).run()
    with loaded_app.engine.connect() as conn:
        counts = box.status_counts(conn, issue.id)
        record = issue_store.issue_by_id(conn, issue.id)
    # The batch in flight is recorded; nothing more goes out, and the pause stands
    # (also when that batch was the last: the operator still has to look at it).
    assert report.sent == counts["sent"] == sent
    assert record.status is IssueStatus.PAUSED and record.status_note == "error budget spent"


def lose_the_connection(conn) -> None:
    """Kill the database connection under a transaction in progress: PostgreSQL ends its
    backend (as a restart or failover would), SQLite's file handle is closed."""
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
    else:
        conn.connection.driver_connection.close()


@pytest.mark.parametrize("where", ["claim_batch", "record_outcomes"])
def test_a_lost_database_connection_stops_the_send_unpaused_and_a_rerun_loses_nobody(
        loaded_app, monkeypatch, where):
    """The connection dies while a sender thread claims or records a batch: the send stops
    with the database's error (the CLI says it in one line, a worker backs off and tries
    again), the issue is not paused (nothing about it needs an editor), and a later send
    delivers to everyone exactly once."""
    from sqlalchemy.exc import DBAPIError

    from mailer.sending import send_issue

    app = loaded_app.with_settings(concurrency=2, batch_size=3)
    issue = store_issue(app, issue_moment(app.settings, app.clock, date(2026, 12, 3)))
    original = getattr(box, where)
    calls = []

    def dying(conn, *args, **kwargs):
        calls.append(where)
        if len(calls) == 2:
            lose_the_connection(conn)
        return original(conn, *args, **kwargs)

    monkeypatch.setattr(box, where, dying)
    with pytest.raises(DBAPIError):
        send_issue(app, issue)
    monkeypatch.setattr(box, where, original)
    with app.engine.connect() as conn:
        assert issue_store.issue_by_id(conn, issue.id).status is IssueStatus.SENDING
    # Rows recorded by nobody stay leased to this (live) process: the rerun comes after.
    later = app.with_clock(MovableClock(app.clock.now() + LEASE + timedelta(seconds=1)))
    result = send_issue(later, issue)
    assert result.finished and result.counts["sent"] == 12
    assert result.counts["possible_duplicates"] == 0
    written = list((app.settings.outbox_dir / f"issue-{issue.id}").glob("*.eml"))
    assert len(written) == 12


def test_an_issue_paused_by_another_worker_is_not_sent_on_nor_marked_sent(loaded_app):
    """Another worker's error budget pauses the issue while this one drains it: this one
    records the batch in flight and stops claiming; the issue stays paused with its reason
    until `mailer issues resume`, which sends the rest."""
    from mailer.sending import send_issue

    app = loaded_app.with_settings(concurrency=1, batch_size=3)
    issue = enqueued_issue(app)
    one_segment(app, issue.id)  # the claimed batch is one provider call
    reason = "paused: 30 of the first 500 recipients failed"
    provider = app.provider
    send_batch = provider.send_batch

    def paused_elsewhere_meanwhile(batch):
        with app.engine.begin() as conn:
            issue_store.set_issue_status(conn, issue.id, IssueStatus.PAUSED, app.clock.now(),
                                         note=reason)
        provider.send_batch = send_batch
        return send_batch(batch)

    provider.send_batch = paused_elsewhere_meanwhile
    report = Worker(app, WorkerOptions(once=True)).run()
    assert report.sent == 3 and report.paused_issues == {issue.id}
    with app.engine.connect() as conn:
        record = issue_store.issue_by_id(conn, issue.id)
        assert (record.status, record.status_note) == (IssueStatus.PAUSED, reason)
        assert box.status_counts(conn, issue.id)["queued"] == 9
    result = send_issue(app, issue, resume=True)
    assert result.finished and result.counts["sent"] == 12
