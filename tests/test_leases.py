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
from mailer.delivery.pacing import RateLimiter
from mailer.errors import ProviderError
from mailer.models import DeliveryOutcome, OutboxStatus, RecipientStatus
from mailer.sending import enqueue, store_issue
from mailer.store import outbox as box
from mailer.store import outbox_fill
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
    """Outbox id -> (status, worker holding it, batch_key)."""
    with app.engine.connect() as conn:
        return {i: (s, w and box.worker_of(w), k) for i, s, w, k in conn.execute(
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


def test_a_stale_thread_cannot_record_over_a_take_over_by_its_own_process(loaded_app):
    """A sender thread of host-a outlives its lease, and host-a itself takes the rows
    over (another thread, or the next drain's resume), keeping their batch key. The stale
    thread shares worker id and batch key with that take-over, yet its late answer, its
    give-back and its renewal must all miss: the take-over decides those rows."""
    app, issue = sending_app(loaded_app)
    with app.engine.begin() as conn:
        stale = box.claim_batch(conn, issue.id, SLOW, 3, app.clock.now(), lease_of(app),
                                batch_key="k")
    ids = [r.id for r in stale]
    app.clock.instant += lease_of(app) + timedelta(seconds=1)
    now = app.clock.now()
    with app.engine.begin() as conn:
        taken = box.take_over_stranded(conn, issue.id, SLOW, now, lease_of(app))
        late = box.record_outcomes(conn, [Outcome(i, OutboxStatus.QUEUED, error="late")
                                          for i in ids], now, SLOW, "k")
        given_back = box.release_unsent(conn, ids, SLOW, now, "k")
        renewed = box.renew_lease(conn, issue.id, (ids[0], ids[-1]), SLOW, ("k",),
                                  now + lease_of(app))
    assert (late.rows, late.missed, given_back, renewed) == (0, 3, 0, 0)
    assert {s for s, _, _ in states(app, ids).values()} == {"sending"}
    with app.engine.begin() as conn:
        decided = box.record_outcomes(conn, [Outcome(i, OutboxStatus.SENT, "p") for i in ids],
                                      now, taken.holder, "k")
    assert decided.rows == 3


def test_each_take_over_holds_its_rows_under_its_own_name_of_its_worker(loaded_app):
    """Two take-overs by one process hold rows under different names, each showing the
    worker (as `mailer send` reports rows leased elsewhere), and a second take-over
    fences out the first."""
    app, issue = sending_app(loaded_app)
    with app.engine.begin() as conn:
        box.claim_batch(conn, issue.id, OTHER, 2, app.clock.now(), lease_of(app),
                        batch_key="k")
    app.clock.instant += lease_of(app) + timedelta(seconds=1)
    with app.engine.begin() as conn:
        first = box.take_over_stranded(conn, issue.id, SLOW, app.clock.now(), lease_of(app))
    assert box.worker_of(first.holder) == SLOW != first.holder
    with app.engine.connect() as conn:
        assert box.live_leases(conn, issue.id, app.clock.now()) == {SLOW: 2}
    app.clock.instant += lease_of(app) + timedelta(seconds=1)
    with app.engine.begin() as conn:
        second = box.take_over_stranded(conn, issue.id, SLOW, app.clock.now(), lease_of(app))
        ids = [r.id for r in second.rows]
        late = box.record_outcomes(conn, [Outcome(i, OutboxStatus.SENT, "p") for i in ids],
                                   app.clock.now(), first.holder, "k")
    assert len(ids) == 2 and second.holder != first.holder and late.missed == 2
    with app.engine.connect() as conn:
        assert box.sending_workers(conn, issue.id) == [second.holder]


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


class Scripted:
    """The provider, with `before(call_number, batch)` run before each call goes through
    (it may move the clock, take rows over, or raise a ProviderError)."""

    def __init__(self, inner, before):
        self.inner, self.before, self.calls = inner, before, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send_batch(self, batch):
        self.calls += 1
        self.before(self.calls, batch)
        return self.inner.send_batch(batch)


def take_over(app, issue) -> list[int]:
    """The rows another worker looking for stranded rows takes over now."""
    with app.engine.begin() as conn:
        return [r.id for r in box.take_over_stranded(conn, issue.id, OTHER, app.clock.now(),
                                                     lease_of(app)).rows]


def test_a_claim_renews_its_lease_before_each_next_segment(loaded_app):
    """The first segment's call takes longer than the lease: before the next segment the
    sender renews the lease (nobody took the rows meanwhile), so another worker looking
    for stranded rows finds none of the claim's later segments."""
    app, issue = sending_app(loaded_app, batch_size=12)
    taken: list[list[int]] = []

    def before(call, batch):
        if call == 1:
            app.clock.instant += lease_of(app) + timedelta(minutes=1)
        else:
            taken.append(take_over(app, issue))

    dispatcher = app.dispatcher(worker=SLOW)
    provider = dispatcher.provider = Scripted(dispatcher.provider, before)
    report = dispatcher.drain(issue.id)
    assert provider.calls > 1, "the sample issue needs more than one segment"
    assert taken == [[]] * (provider.calls - 1)
    assert report.sent == 12 and files_written(app, issue) == 12
    with app.engine.connect() as conn:
        counts = box.status_counts(conn, issue.id)
    assert counts["sent"] == 12 and counts["possible_duplicates"] == 0


def test_a_claim_taken_over_during_a_segment_sends_none_of_the_rest(loaded_app):
    """The first call outlives the lease and another worker takes the whole claim over
    meanwhile: the sender stops that claim instead of sending the later segments, whose
    rows the other worker now decides; together they deliver everyone once."""
    app, issue = sending_app(loaded_app, batch_size=12)
    first: list[int] = []

    def before(call, batch):
        if call == 1:
            app.clock.instant += lease_of(app) + timedelta(minutes=1)
            assert len(take_over(app, issue)) == 12
            first.extend(r.outbox_id for r in batch.recipients)

    dispatcher = app.dispatcher(worker=SLOW)
    provider = dispatcher.provider = Scripted(dispatcher.provider, before)
    dispatcher.drain(issue.id)
    assert provider.calls == 1 and files_written(app, issue) == len(first) < 12
    with app.engine.connect() as conn:
        ids = conn.execute(select(outbox.c.id)).scalars().all()
    assert {(s, w) for s, w, _ in states(app, ids).values()} == {("sending", OTHER)}

    app.clock.instant += 2 * lease_of(app)  # the other worker died too: decide and send
    later = app.dispatcher(worker="host-c:3")
    assert later.resume_stranded(issue.id) == 12
    assert later.drain(issue.id).sent == 12 - len(first)
    with app.engine.connect() as conn:
        counts = box.status_counts(conn, issue.id)
    assert counts["sent"] == 12 and counts["possible_duplicates"] == 0
    assert files_written(app, issue) == 12


class WaitWatched(threading.Event):
    """A stop event that runs `during_wait` once, in the first wait after it is armed: the
    moment a sender waits to retry (or for the rate limiter after a 429). That wait passes
    by the test's clock (`during_wait` moves it), so it returns at once, not set."""

    def __init__(self, during_wait):
        super().__init__()
        self.during_wait, self.armed = during_wait, False

    def wait(self, timeout=None):
        if self.armed:
            self.armed = False
            self.during_wait()
            return self.is_set()
        return super().wait(timeout)


def limiter_on(clock) -> RateLimiter:
    """A rate limiter that tells time by the test's clock: a 429's wait passes only when
    the test moves the clock, however slowly the sender thread runs."""
    start = clock.now()
    return RateLimiter(monotonic=lambda: (clock.now() - start).total_seconds())


RETRY_AFTER = 30.0  # seconds; far past the lease of the claim, well within a renewed one


@pytest.mark.parametrize("status", [503, 429])
def test_a_retry_wait_that_would_pass_the_lease_renews_it_first(loaded_app, status):
    """A retryable failure just before the lease ends: the sender renews the lease before
    it waits to try again, so the rows are not stranded while it waits. The wait (the
    retry delay, or the limiter's after a 429) passes by the test's clock alone."""
    app, issue = sending_app(loaded_app, batch_size=12)
    one_segment(app, issue.id)
    claimed_at = app.clock.now()
    taken: list[list[int]] = []

    def while_waiting():
        app.clock.instant += timedelta(seconds=RETRY_AFTER)  # past the lease of the claim
        taken.append(take_over(app, issue))

    stop = WaitWatched(while_waiting)

    def before(call, batch):
        if call == 1:
            app.clock.instant = claimed_at + lease_of(app) - timedelta(milliseconds=1)
            stop.armed = True
            raise ProviderError(f"{status}", retryable=True, status=status,
                                retry_after=RETRY_AFTER)

    dispatcher = app.dispatcher(worker=SLOW)
    dispatcher.limiter = limiter_on(app.clock)
    provider = dispatcher.provider = Scripted(dispatcher.provider, before)
    report = dispatcher.drain(issue.id, stop)
    assert taken == [[]] and provider.calls == 2
    assert report.sent == 12 and files_written(app, issue) == 12


def test_no_renewal_after_a_call_an_idempotent_provider_may_have_accepted(loaded_app):
    """Brevo's answer is lost (the call was accepted) just before the lease ends: the
    retry goes under the same idempotency key, but the lease is not renewed for it, since
    a take-over judges by the lease's age whether Brevo still knows the key."""
    from tests.delivery_support import app_for, start_emulator

    plain, issue = sending_app(loaded_app, batch_size=12)
    one_segment(plain, issue.id)
    emu = start_emulator("brevo")
    try:
        app = app_for(plain, "brevo", emu)
        lease_ends = app.clock.now() + lease_of(app)
        seen: list[set] = []

        def while_waiting():
            with app.engine.connect() as conn:
                seen.append(set(conn.execute(select(outbox.c.lease_until)).scalars()))

        stop = WaitWatched(while_waiting)

        def before(call, batch):
            if call == 1:
                app.clock.instant = lease_ends - timedelta(milliseconds=1)
                emu.fail_next("drop")
                stop.armed = True

        dispatcher = app.dispatcher(worker=SLOW)
        provider = dispatcher.provider = Scripted(dispatcher.provider, before)
        report = dispatcher.drain(issue.id, stop)
    finally:
        emu.stop()
    assert provider.calls == 2 and seen == [{lease_ends}]
    assert report.sent == 12 and len(emu.received) == 12 and emu.duplicates() == {}


# -- honest counts: an answer the fence threw away counts nowhere ------------------------


def issue_status_json(app, issue_id: int) -> dict:
    """`mailer issues status ID --json`: the issue as the database has it."""
    import json

    from click.testing import CliRunner

    from mailer.cli import main
    from tests.conftest import REPO, TEST_KEY

    env = {"MAILER_DATABASE_URL": app.settings.database_url, "MAILER_SECRET_KEY": TEST_KEY}
    result = CliRunner().invoke(main, ["--config", str(REPO / "mailer.toml"), "issues",
                                       "status", str(issue_id), "--json"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_answers_of_a_claim_taken_over_are_counted_by_nobody_but_the_taker(loaded_app, capsys,
                                                                           caplog):
    """The send's first call outlives its lease; another worker takes the claim over and
    puts its rows back in the queue (the file provider had not written them). The late
    answer (a timeout) is fenced out, and the send then claims and sends the same rows
    anew: its report and progress bar count them once, as the database does, not once
    per answer (24 of an issue of 12), and the thrown-away timeouts spend none of its
    error budget (12 of the first 24 would pause the issue)."""
    import re

    from mailer.cli.issue import echo_result
    from mailer.cli.progress import progress_bar
    from mailer.sending import send_issue

    app, issue = sending_app(loaded_app, batch_size=12, error_budget=0.05,
                             error_budget_window=24)
    one_segment(app, issue.id)
    slow = app.with_settings()  # the `mailer send` process, with a provider of its own
    held = slow.__dict__["provider"] = HeldFirstCall(slow.provider, lambda batch: [
        RecipientStatus(DeliveryOutcome.FAILED, detail="timed out")] * len(batch.recipients))
    reports = []
    with progress_bar(12) as update:
        def progress(report):
            reports.append((report.sent, report.failed))
            update(report)

        thread = threading.Thread(target=lambda: reports.append(
            send_issue(slow, issue, on_progress=progress)), daemon=True)
        thread.start()
        assert held.caught.wait(60)
        app.clock.instant += lease_of(app) + timedelta(seconds=1)
        assert app.dispatcher(worker=OTHER).resume_stranded(issue.id) == 12  # queued again
        held.release.set()
        thread.join(60)
        assert not thread.is_alive()
    bar = capsys.readouterr().err
    result = reports.pop()
    assert result.finished and not result.drain.paused and held.calls == 2
    assert (result.drain.sent, result.drain.retrying, result.drain.lost_to_takeover) == (
        12, 0, 12)
    assert reports[-1] == (12, 0) and all(sent <= 12 for sent, _ in reports)
    assert re.findall(r"sent (\d+)", bar)[-1] == "12"
    said = [r.getMessage() for r in caplog.records if "by another worker" in r.getMessage()]
    assert len(said) == 1 and "12 row(s) taken over by another worker" in said[0]

    status = issue_status_json(app, issue.id)
    assert status["status"] == "sent" and status["counts"]["sent"] == 12
    echo_result(result)
    summary = capsys.readouterr().out
    assert "  sent 12, failed 0, skipped 0, queued 0, in flight 0" in summary
    assert "12 answer(s) came after another worker had taken their rows over" in summary


# -- a take-over's lease, renewed while it reconciles ----------------------------------


CRASHED = "host-z:9"  # a worker on another machine that died with a claim in flight


def crashed_claim(app, issue, delivered: int) -> list[int]:
    """The ids of a claim of all 12 rows left in `sending` by a crashed worker, whose call
    the provider accepted for the first `delivered` rows; its lease has just run out."""
    dispatcher = app.dispatcher(worker=CRASHED)
    with app.engine.begin() as conn:
        rows = box.claim_batch(conn, issue.id, CRASHED, 12, app.clock.now(), lease_of(app),
                               batch_key="crashed")
        renders = outbox_fill.load_renders(conn, issue.id)
    segment = rows[0].segment_key
    app.provider.send_batch(dispatcher.batch_for(issue.id, renders[segment], segment,
                                                 rows[:delivered]))
    app.clock.instant += lease_of(app) + timedelta(seconds=1)
    return [r.id for r in rows]


def lease_ends(app, ids) -> dict[int, datetime]:
    with app.engine.connect() as conn:
        return dict(conn.execute(select(outbox.c.id, outbox.c.lease_until)
                                 .where(outbox.c.id.in_(list(ids)))).all())


def test_the_reconcile_chunk_follows_the_lease_and_the_request_timeout():
    from mailer.delivery.leases import reconcile_chunk

    assert reconcile_chunk(timedelta(seconds=300), 30.0) == 4  # the defaults
    assert reconcile_chunk(timedelta(seconds=600), 10.0) == 29
    assert reconcile_chunk(timedelta(seconds=60), 20.0) == 1
    assert reconcile_chunk(timedelta(seconds=30), 60.0) == 1  # never none


@pytest.mark.parametrize(("provider", "overrides"), [
    ("mailgun", {}), ("postmark", {}),
    # Four look-ups that each time out outlast this lease: fewer fit between renewals.
    ("mailgun", {"lease_seconds": 60, "request_timeout": 20.0}),
    ("postmark", {"lease_seconds": 120, "request_timeout": 20.0}),
])
def test_a_take_over_renews_its_lease_while_a_slow_reconcile_looks_rows_up(loaded_app,
                                                                          provider, overrides):
    """Each look-up of the provider takes the whole request timeout by the test's clock
    (it timed out), so the reconcile of the crashed claim outlasts the lease: the worker
    deciding it renews its lease on the way, and another worker looking for stranded
    rows after every look-up finds none; each row is looked up once and decided once."""
    from tests.delivery_support import app_for, start_emulator

    plain, issue = sending_app(loaded_app, **overrides)
    one_segment(plain, issue.id)
    emu = start_emulator(provider)
    try:
        app = app_for(plain, provider, emu)
        ids = crashed_claim(app, issue, delivered=6)
        step = timedelta(seconds=app.settings.request_timeout)
        assert 12 * step > lease_of(app)
        taken: list[list[int]] = []

        def slow_lookup():
            app.clock.instant += step
            taken.append(take_over(app, issue))

        emu.before_lookup = slow_lookup
        decided = app.dispatcher(worker=SLOW).resume_stranded(issue.id)
    finally:
        emu.stop()
    assert taken == [[]] * 12 and decided == 12
    with app.engine.connect() as conn:
        counts = box.status_counts(conn, issue.id)
    assert (counts["sent"], counts["queued"], counts["sending"]) == (6, 6, 0)
    assert counts["possible_duplicates"] == 6  # not found: resent, and may arrive twice
    assert set(states(app, ids).values()) >= {("sent", None, "crashed")}


def test_a_take_over_whose_rows_were_taken_stops_and_gives_the_rest_back(loaded_app):
    """One look-up hangs for two leases, and meanwhile a second worker takes the rows of
    the first chunk over: at its next renewal the worker sees it, asks nothing more, and
    gives the rows it still holds back with the crashed claim's lease (run out), so a
    later take-over decides them and still knows when the claim was made."""
    from tests.delivery_support import app_for, start_emulator

    plain, issue = sending_app(loaded_app)
    one_segment(plain, issue.id)
    emu = start_emulator("mailgun")
    looked_up: list[int] = []
    try:
        app = app_for(plain, "mailgun", emu)
        ids = crashed_claim(app, issue, delivered=6)
        crashed_lease = lease_ends(app, ids)
        chunk = app.dispatcher(worker=SLOW).reconcile_chunk
        first_chunk = ids[:chunk]

        def hanging_lookup():
            looked_up.append(1)
            if len(looked_up) == 1:
                app.clock.instant += 2 * lease_of(app)
                with app.engine.begin() as conn:  # a second taker got these rows
                    conn.execute(outbox.update().where(outbox.c.id.in_(first_chunk)).values(
                        claimed_by=OTHER, lease_until=app.clock.now() + lease_of(app)))

        emu.before_lookup = hanging_lookup
        decided = app.dispatcher(worker=SLOW).resume_stranded(issue.id)
        assert decided == 0 and len(looked_up) == chunk
        rest = ids[chunk:]
        assert {states(app, [i])[i][:2] for i in first_chunk} == {("sending", OTHER)}
        assert {lease_ends(app, [i])[i] for i in rest} == {crashed_lease[rest[0]]}
        assert take_over(app, issue) == rest  # stranded again
    finally:
        emu.stop()


def test_a_chain_of_take_overs_does_not_make_a_forgotten_brevo_key_look_young(loaded_app):
    """A claim sent to Brevo crashes; a worker takes it over and crashes too, before
    deciding it. When the next take-over comes, Brevo has forgotten the key of the first
    claim (its age, from the claim, is past the TTL), though not the age the taker's
    lease suggests: the batch must not be resent under the forgotten key as if Brevo would
    deduplicate it. Its rows are sent again flagged as possible duplicates."""
    from tests.delivery_support import app_for, start_emulator

    plain, issue = sending_app(loaded_app)
    one_segment(plain, issue.id)
    emu = start_emulator("brevo")
    try:
        app = app_for(plain, "brevo", emu)
        claimed_at = app.clock.now()
        ids = crashed_claim(app, issue, delivered=12)
        assert take_over(app, issue) == ids  # OTHER takes the claim over, then dies
        taken_at = app.clock.now()
        ttl = app.provider.idempotency_ttl
        app.clock.instant = claimed_at + ttl + timedelta(seconds=1)
        assert app.clock.now() > taken_at + lease_of(app)  # stranded again
        assert app.clock.now() - taken_at < ttl  # young, judged by the taker's lease
        emu.idempotency_keys.clear()  # Brevo has forgotten the first claim's key
        assert app.dispatcher(worker=SLOW).resume_stranded(issue.id) == 12
        with app.engine.connect() as conn:
            counts = box.status_counts(conn, issue.id)
        assert (counts["queued"], counts["possible_duplicates"]) == (12, 12)
        app.dispatcher(worker=SLOW).drain(issue.id)
    finally:
        emu.stop()
    with app.engine.connect() as conn:
        declared = set(conn.execute(select(outbox.c.email).where(
            outbox.c.possible_duplicate.is_(True))).scalars())
    assert set(emu.duplicates()) == {e.lower() for e in declared} and len(declared) == 12
