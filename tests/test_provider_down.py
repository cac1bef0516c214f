"""A provider that cannot be reached or keeps failing whole calls pauses the send with its
rows queued (no attempt spent), and an issue whose rows all failed is paused, not sent."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import select

from mailer.models import IssueStatus
from mailer.sending import enqueue, send_issue
from mailer.store.tables import issues, outbox, subscribers
from tests.delivery_support import app_for, one_segment, start_emulator, the_issue


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """Retry at once: what these tests count is calls and outcomes, not the waits between
    them (the real backoff, 0.5 s doubling, cost ~8 s a test)."""
    from mailer.delivery import dispatcher

    monkeypatch.setattr(dispatcher, "retry_delay", lambda *args, **kwargs: 0.0)


@pytest.fixture
def postmark():
    emu = start_emulator("postmark")
    yield emu
    emu.stop()


def closed_port_url() -> str:
    """An address on this machine where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def outbox_rows(app) -> set[tuple[str, int]]:
    """(status, attempts) of the outbox rows."""
    with app.engine.connect() as conn:
        return set(conn.execute(select(outbox.c.status, outbox.c.attempts)).all())


def issue_record(app):
    with app.engine.connect() as conn:
        return conn.execute(select(issues)).one()


@pytest.mark.parametrize("cause", ["nothing listening", "HTTP 500"])
def test_a_provider_that_cannot_take_calls_pauses_the_send_and_keeps_the_rows(
        loaded_app, postmark, cause):
    """Every call fails as a whole, after its retries, without reaching anyone: the send
    pauses as the error budget would (a list of 12 never fills its window), every row stays
    queued with no attempt spent, and a resume once the provider is back sends each once."""
    down = app_for(loaded_app, "postmark", postmark, batch_size=4, concurrency=1)
    if cause == "nothing listening":
        down = down.with_settings(provider_url=closed_port_url())
    else:
        postmark.fail_next("status", count=1000, status=500)
    issue = the_issue(down)
    result = send_issue(down, issue)
    assert not result.finished and "provider unreachable or failing" in result.drain.paused
    assert "3 calls in a row" in result.drain.paused
    assert (result.counts["queued"], result.counts["failed"], result.counts["sent"]) == (
        12, 0, 0)
    assert outbox_rows(down) == {("queued", 0)}
    record = issue_record(down)
    assert record.status == IssueStatus.PAUSED.value
    assert "mailer issues resume" in record.status_note
    assert postmark.batches_accepted == 0

    postmark.faults.clear()
    up = app_for(loaded_app, "postmark", postmark, batch_size=4, concurrency=1)
    resumed = send_issue(up, issue, resume=True)
    assert resumed.finished and resumed.counts["sent"] == 12
    assert len(postmark.received) == 12 and not postmark.duplicates()


def test_one_call_failing_all_its_retries_goes_back_to_the_queue_and_goes_out(
        loaded_app, postmark):
    """A call that failed four times (its retries) is given back unsent and claimed again:
    fewer failed calls in a row than pause the send, so it just goes out, once."""
    postmark.fail_next("status", count=4, status=503)
    app = app_for(loaded_app, "postmark", postmark, batch_size=4, concurrency=1)
    result = send_issue(app, the_issue(app))
    assert result.finished and not result.drain.paused
    assert (result.counts["sent"], result.counts["failed"]) == (12, 0)
    assert postmark.send_calls == postmark.batches_accepted + 4 and not postmark.duplicates()
    assert {s for s, _ in outbox_rows(app)} == {"sent"}


def test_an_issue_whose_rows_all_failed_is_paused_not_sent(loaded_app, postmark):
    """Postmark refuses every address (inactive) and the error budget allows it all: the
    rows are done, but nobody got the issue, so it is not `sent`."""
    with loaded_app.engine.connect() as conn:
        postmark.inactive = {e.lower() for e in conn.execute(
            select(subscribers.c.email)).scalars()}
    app = app_for(loaded_app, "postmark", postmark, error_budget=1.0)
    issue = the_issue(app)
    result = send_issue(app, issue)
    assert not result.finished and result.counts["failed"] == 12
    assert "nothing was delivered, all 12 row(s) failed" in result.drain.paused
    record = issue_record(app)
    assert record.status == IssueStatus.PAUSED.value and record.sent_at is None
    assert f"mailer issues retry-failed {issue.id}" in record.status_note
    again = send_issue(app, issue, resume=True)  # nothing to resume: still not sent
    assert not again.finished and again.drain.paused
    assert issue_record(app).status == IssueStatus.PAUSED.value


# -- an attempt that may have been accepted decides the call, whatever the retries met -------

def brevo_claim_of_12(loaded_app, brevo):
    """(a Brevo app with max_attempts 1, its enqueued issue of 12 rows in one segment)."""
    app = app_for(loaded_app, "brevo", brevo, batch_size=12, concurrency=1, max_attempts=1)
    issue = the_issue(app)
    enqueue(app, issue)
    one_segment(app, issue.id)
    return app, issue


class ThenNothingListens:
    """The Brevo provider, pointed at a closed port after its first call: the retries of a
    call whose first attempt may have been accepted cannot connect at all."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send_batch(self, batch):
        self.calls += 1
        if self.calls == 2:
            self.inner.base_url = closed_port_url()
        return self.inner.send_batch(batch)


@pytest.mark.parametrize("then", ["nothing listening", "HTTP 503", "HTTP 401"])
def test_a_call_brevo_may_have_accepted_is_never_failed_nor_given_back_by_later_attempts(
        loaded_app, then):
    """Brevo accepts the first attempt but the connection drops before its answer; the
    retries then cannot connect, get 503 or are refused outright. The rows are not
    recorded as plainly failed (`retry-failed` would resend them unannounced) nor given
    back unsent as a call nobody got: each is a possible duplicate, Brevo got each
    address once, and the report says so."""
    brevo = start_emulator("brevo")
    try:
        app, issue = brevo_claim_of_12(loaded_app, brevo)
        brevo.fail_next("drop", accept=True)
        if then.startswith("HTTP"):
            brevo.fail_next("status", count=10, status=int(then[5:]))
        dispatcher = app.dispatcher()
        if then == "nothing listening":
            dispatcher.provider = ThenNothingListens(dispatcher.provider)
        report = dispatcher.drain(issue.id)
    finally:
        brevo.stop()
    assert brevo.batches_accepted == 1 and len(brevo.received) == 12
    assert not brevo.duplicates()
    assert brevo.send_calls == (1 if then == "nothing listening" else
                                2 if then == "HTTP 401" else dispatcher.call_attempts)
    assert report.possible_duplicates == 12 and report.failed == 12
    assert report.paused == ("brevo refused a whole batch: brevo: HTTP 401: emulated failure"
                             if then == "HTTP 401" else None)
    with app.engine.connect() as conn:
        recorded = set(conn.execute(select(outbox.c.status, outbox.c.possible_duplicate)))
    assert recorded == {("failed", True)}
