"""Leases of claimed outbox rows: recording fenced on the claim, leases renewed while a
claim is being sent. Dispatchers are driven by hand: a provider call is held or answered
as the test says, and the test's clock moves the lease past its end."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from mailer.compose import issue_moment
from mailer.models import DeliveryOutcome, OutboxStatus, RecipientStatus
from mailer.sending import enqueue, store_issue
from mailer.store import outbox as box
from mailer.store.outbox import Outcome
from mailer.store.tables import outbox
from tests.delivery_support import one_segment

SLOW, OTHER = "host-a:1", "host-b:2"  # two processes; SLOW's threads share its id


@dataclass
class MovableClock:
    """A clock the test moves by hand."""

    instant: datetime

    def now(self) -> datetime:
        return self.instant


def sending_app(loaded_app, **settings):
    """(app on a movable clock, its enqueued sample issue of 12 rows)."""
    app = loaded_app.with_clock(MovableClock(loaded_app.clock.now())).with_settings(
        concurrency=1, **settings)
    issue = store_issue(app, issue_moment(app.settings, app.clock, date(2026, 12, 3)))
    enqueue(app, issue)
    return app, issue


def lease_of(app) -> timedelta:
    return timedelta(seconds=app.settings.lease_seconds)


def states(app, ids) -> dict[int, tuple[str, str | None, str | None]]:
    """Outbox id -> (status, claimed_by, batch_key)."""
    with app.engine.connect() as conn:
        return {i: (s, w, k) for i, s, w, k in conn.execute(
            select(outbox.c.id, outbox.c.status, outbox.c.claimed_by, outbox.c.batch_key)
            .where(outbox.c.id.in_(list(ids))))}


def files_written(app, issue) -> int:
    return len(list((app.settings.outbox_dir / f"issue-{issue.id}").glob("*.eml")))


class HeldFirstCall:
    """The provider, holding its first call until released and then answering it with
    `answer`: a thread whose call outlives its lease."""

    def __init__(self, inner, answer):
        self.inner, self.answer = inner, answer
        self.caught, self.release = threading.Event(), threading.Event()
        self.held: list[int] = []
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send_batch(self, batch):
        self.calls += 1
        if self.calls > 1:
            return self.inner.send_batch(batch)
        self.held = [r.outbox_id for r in batch.recipients]
        self.caught.set()
        assert self.release.wait(60), "the test never released the held call"
        return self.answer(batch)


def test_a_late_answer_cannot_overwrite_a_claim_another_thread_of_its_process_made(loaded_app):
    """A sender thread of process host-a outlives its lease; host-b takes its rows over and
    puts them back in the queue (the file provider never wrote them); another thread of
    host-a claims them again. The first thread's late answer (a timeout: try again later)
    must not touch the new claim, which shares the worker id host:pid but not the claim:
    else the row went back to the queue while the new claim delivered it, and the new
    claim's own answer was fenced out: one more send."""
    app, issue = sending_app(loaded_app, batch_size=3)
    one_segment(app, issue.id)
    slow = app.dispatcher(worker=SLOW)
    held = slow.provider = HeldFirstCall(slow.provider, lambda batch: [
        RecipientStatus(DeliveryOutcome.FAILED, detail="timed out")] * len(batch.recipients))
    stop = threading.Event()
    thread = threading.Thread(target=slow.drain, args=(issue.id, stop), daemon=True)
    thread.start()
    assert held.caught.wait(60)
    stop.set()  # the thread records its batch in flight, then claims no more

    app.clock.instant += lease_of(app) + timedelta(seconds=1)
    assert app.dispatcher(worker=OTHER).resume_stranded(issue.id) == 3  # recorded: queued
    assert {s for s, _, _ in states(app, held.held).values()} == {"queued"}
    with app.engine.begin() as conn:
        again = box.claim_batch(conn, issue.id, SLOW, 3, app.clock.now(), lease_of(app),
                                batch_key="second-claim")
    assert [r.id for r in again] == held.held

    held.release.set()
    thread.join(60)
    assert not thread.is_alive()
    assert set(states(app, held.held).values()) == {("sending", SLOW, "second-claim")}
    with app.engine.begin() as conn:
        box.record_outcomes(conn, [Outcome(i, OutboxStatus.SENT, provider_message_id="p")
                                   for i in held.held], app.clock.now(), SLOW, "second-claim")
    assert {s for s, _, _ in states(app, held.held).values()} == {"sent"}


def test_a_stale_thread_cannot_give_back_rows_its_process_claimed_again(loaded_app):
    app, issue = sending_app(loaded_app)
    now = app.clock.now()
    with app.engine.begin() as conn:
        first = box.claim_batch(conn, issue.id, SLOW, 2, now, lease_of(app), batch_key="k1")
        ids = [r.id for r in first]
        box.release_unsent(conn, ids, SLOW, now, "k1")  # the halt path: back to the queue
        box.claim_batch(conn, issue.id, SLOW, 2, now, lease_of(app), batch_key="k2")
        assert box.release_unsent(conn, ids, SLOW, now, "k1") == 0
    assert set(states(app, ids).values()) == {("sending", SLOW, "k2")}


@pytest.mark.parametrize("final", [OutboxStatus.SENT, OutboxStatus.FAILED,
                                   OutboxStatus.SKIPPED])
def test_no_late_write_moves_a_decided_row_backwards(loaded_app, final):
    app, issue = sending_app(loaded_app)
    now = app.clock.now()
    with app.engine.begin() as conn:
        rows = box.claim_batch(conn, issue.id, "w", 2, now, lease_of(app), batch_key="k")
        box.record_outcomes(conn, [Outcome(r.id, final, error="decided") for r in rows],
                            now, "w", "k")
        late = [Outcome(r.id, OutboxStatus.QUEUED, error="late") for r in rows]
        box.record_outcomes(conn, late, now)  # unfenced
        box.record_outcomes(conn, late, now, "w", "k")
        box.release_unsent(conn, [r.id for r in rows], "w", now, "k")
    assert {s for s, _, _ in states(app, [r.id for r in rows]).values()} == {final.value}
