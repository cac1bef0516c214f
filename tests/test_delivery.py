"""Delivery through each HTTP provider adapter to its local emulator (a real HTTP server)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailer.delivery.dispatcher import MessageTooLarge
from mailer.models import IssueStatus, OutboxStatus, SubscriberStatus
from mailer.providers.file import copies_for
from mailer.sending import IssuePaused, enqueue, send_issue
from mailer.store import subscribers as subs
from mailer.store.tables import issues, outbox, subscribers, suppressions
from mailer.subscriptions import forget
from tests.delivery_support import (
    HTTP_PROVIDERS,
    PausedMidway,
    app_for,
    start_emulator,
    the_issue,
)


@pytest.fixture
def emulators():
    running = []

    def start(name, **kw):
        running.append(start_emulator(name, **kw))
        return running[-1]

    yield start
    for e in running:
        e.stop()


def active_emails(app):
    with app.engine.connect() as conn:
        return {e.lower() for e in conn.execute(select(subscribers.c.email).where(
            subscribers.c.status == SubscriberStatus.ACTIVE.value)).scalars()}


def rows(app):
    with app.engine.connect() as conn:
        return conn.execute(select(outbox).order_by(outbox.c.id)).all()


@pytest.mark.parametrize("name", HTTP_PROVIDERS)
def test_each_subscriber_gets_the_issue_once_with_own_links(loaded_app, emulators, name):
    emu = emulators(name)
    app = app_for(loaded_app, name, emu, concurrency=3, batch_size=5)
    result = send_issue(app, the_issue(app))
    assert result.finished and result.counts["sent"] == 12
    assert set(emu.received) == active_emails(app) and not emu.duplicates()
    by_outbox = {r.id: r for r in rows(app)}
    for m in emu.messages:
        unsubscribe = m["headers"]["List-Unsubscribe"].split(">")[0].lstrip("<")
        claims = app.links.read("unsubscribe", unsubscribe.rsplit("/", 1)[1])
        row = by_outbox[int(m["metadata"]["outbox_id"])]
        assert claims.subscriber_id == row.subscriber_id and row.email.lower() == m["to"].lower()
        assert unsubscribe in m["html"] and unsubscribe in m["text"]
        assert "%%" not in m["html"] + m["text"]
        assert m["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert m["headers"]["Message-ID"] == row.message_id
        assert m["headers"]["List-Id"].endswith("<weerbaarnl.platformjep.example.nl>")
    assert all(r.status == OutboxStatus.SENT.value and r.provider_message_id for r in rows(app)
               if name != "brevo" or r.provider_message_id)
    if name == "postmark":
        assert {m["stream"] for m in emu.messages} == {"broadcast"}


def test_postmark_per_message_errors_are_recorded_and_inactive_is_bounced(loaded_app,
                                                                          emulators):
    emu = emulators("postmark")
    emails = sorted(active_emails(loaded_app))
    emu.inactive = {emails[0]}
    app = app_for(loaded_app, "postmark", emu)
    with app.engine.begin() as conn:  # an address Postmark's parser refuses (legacy data)
        conn.execute(subscribers.update().where(subscribers.c.email == emails[1])
                     .values(email="kapot@adres"))
    result = send_issue(app, the_issue(app))
    assert result.counts["sent"] == 10 and result.counts["failed"] == 2
    assert result.drain.bounced == 1
    with app.engine.connect() as conn:
        status = dict(conn.execute(select(subscribers.c.email, subscribers.c.status)).all())
        assert conn.execute(select(suppressions)).first() is not None
    failed = {r.email: r.last_error for r in rows(app) if r.status == "failed"}
    assert status[emails[0]] == "bounced" and status["kapot@adres"] == "active"
    assert "inactive" in failed[emails[0]] and "Invalid 'To' address" in failed["kapot@adres"]


@pytest.mark.parametrize("name,headers", [
    ("postmark", {}),
    ("sendgrid", {"X-RateLimit-Reset": "0"}),
    ("brevo", {"x-sib-ratelimit-reset": "0"}),
    ("mailgun", {"Retry-After": "0"}),
])
def test_429_slows_down_and_everyone_still_gets_it_once(loaded_app, emulators, name, headers):
    emu = emulators(name)
    emu.fail_next("status", count=2, status=429, headers=headers,
                  body=b'{"errors": [{"message": "too many requests"}]}')
    app = app_for(loaded_app, name, emu, batch_size=4)
    seen = []
    result = send_issue(app, the_issue(app), on_progress=seen.append)
    assert result.finished and result.counts["sent"] == 12
    assert not emu.duplicates() and len(emu.received) == 12
    assert emu.send_calls == emu.batches_accepted + 2
    assert seen and seen[-1].sent == 12


@pytest.mark.parametrize("name", ["sendgrid", "brevo"])
def test_5xx_is_retried(loaded_app, emulators, name):
    emu = emulators(name)
    emu.fail_next("status", count=2, status=503)
    app = app_for(loaded_app, name, emu)
    result = send_issue(app, the_issue(app))
    assert result.finished and result.counts["sent"] == 12 and not emu.duplicates()


def test_a_dropped_connection_after_acceptance_is_safe_with_brevo(loaded_app, emulators):
    emu = emulators("brevo")
    emu.fail_next("drop")
    app = app_for(loaded_app, "brevo", emu, batch_size=6)
    result = send_issue(app, the_issue(app))
    assert result.finished and result.counts["sent"] == 12
    assert not emu.duplicates() and len(emu.received) == 12
    assert result.counts["possible_duplicates"] == 0


def test_a_dropped_connection_after_acceptance_is_looked_up_at_postmark(loaded_app, emulators):
    emu = emulators("postmark")
    emu.fail_next("drop")
    app = app_for(loaded_app, "postmark", emu, batch_size=6)
    result = send_issue(app, the_issue(app))
    assert result.counts["sent"] == 12 and not emu.duplicates()
    assert result.counts["possible_duplicates"] == 0


def lagging_search(emu):
    """Postmark's outbound search answering before it lists what was just accepted: the
    reference promises no more than a search over what it has recorded."""
    from tests.emulators.base import json_response

    emu._search = lambda request: json_response({"TotalCount": 0, "Messages": []})


@pytest.mark.parametrize("provider", ["sendgrid", "postmark"])
def test_a_resend_the_provider_cannot_vouch_for_is_declared_a_possible_duplicate(
        loaded_app, emulators, provider):
    """SendGrid has no look-up at all; Postmark's search may not list a message yet (it
    lags here): either way the resend after a dropped connection is declared."""
    emu = emulators(provider)
    emu.fail_next("drop")
    if provider == "postmark":
        lagging_search(emu)
    app = app_for(loaded_app, provider, emu, batch_size=6)
    issue = the_issue(app)
    send_issue(app, issue)
    with app.engine.begin() as conn:  # the retry is due later; make it due now
        conn.execute(outbox.update().values(next_attempt_at=None))
    result = send_issue(app, issue)
    assert result.finished and len(emu.received) == 12
    declared = {r.email.lower() for r in rows(app) if r.possible_duplicate}
    assert declared and set(emu.duplicates()) == declared


def test_rows_in_flight_at_a_crash_postmark_cannot_find_yet_are_possible_duplicates(
        loaded_app, emulators):
    from datetime import timedelta

    from mailer.store import outbox as box
    from mailer.store import outbox_fill

    emu = emulators("postmark")
    app = app_for(loaded_app, "postmark", emu)
    issue = the_issue(app)
    enqueue(app, issue)
    with app.engine.begin() as conn:  # claimed and sent, then the process died
        claimed = box.claim_batch(conn, issue.id, "crashed", 6, app.clock.now(),
                                  timedelta(minutes=5))
        renders = outbox_fill.load_renders(conn, issue.id)
    dispatcher = app.dispatcher(worker="after")
    for segment in {r.segment_key for r in claimed}:
        group = [r for r in claimed if r.segment_key == segment]
        app.provider.send_batch(dispatcher.batch_for(issue.id, renders[segment], segment,
                                                     group))
    lagging_search(emu)
    assert dispatcher.resume_stranded(issue.id, include_live_leases=True) == 6
    with app.engine.begin() as conn:  # resent later; make it due now
        conn.execute(outbox.update().values(next_attempt_at=None))
    result = send_issue(app, issue)
    assert result.finished and len(emu.received) == 12
    declared = {r.email.lower() for r in rows(app) if r.possible_duplicate}
    assert set(emu.duplicates()) == {r.email.lower() for r in claimed} == declared


def test_error_budget_pauses_the_issue_instead_of_burning_the_list(loaded_app, emulators):
    emu = emulators("postmark")
    emu.inactive = set(sorted(active_emails(loaded_app))[:6])
    app = app_for(loaded_app, "postmark", emu, batch_size=2, concurrency=1,
                  error_budget=0.05, error_budget_window=40)
    issue = the_issue(app)
    result = send_issue(app, issue)
    assert result.drain.paused and not result.finished
    assert result.counts["queued"] > 0  # the rest of the list was not touched
    with app.engine.connect() as conn:
        record = conn.execute(select(issues)).one()
    assert record.status == IssueStatus.PAUSED.value and "failed" in record.status_note
    with pytest.raises(IssuePaused):
        send_issue(app, issue)
    emu.inactive = set()
    resumed = send_issue(app, issue, resume=True)
    assert resumed.finished and not emu.duplicates()


@pytest.mark.parametrize("cause", ["own budget", "paused elsewhere"])
def test_a_pause_during_a_claimed_batch_sends_none_of_its_other_segments(loaded_app,
                                                                         emulators, cause):
    """One claim holds every row, in several segments (one provider call each); the
    issue is paused during the first call: the other segments' rows go back to queued
    as they were (no attempt counted, no lease), and a resume sends them once."""
    emu = emulators("postmark")
    app = app_for(loaded_app, "postmark", emu, batch_size=50, concurrency=1,
                  error_budget=0.05, error_budget_window=12)
    issue = the_issue(app)
    enqueue(app, issue)
    by_segment: dict[str, set[str]] = {}
    for r in rows(app):
        by_segment.setdefault(r.segment_key, set()).add(r.email.lower())
    assert len(by_segment) > 1
    first = by_segment[rows(app)[0].segment_key]
    refused = {min(first)} if cause == "own budget" else set()
    if refused:
        emu.inactive = refused  # one failure spends a budget of 5 % of 12 (and bounces)
    else:
        app.__dict__["provider"] = PausedMidway(app, issue.id)
    result = send_issue(app, issue)
    assert result.drain.paused and not result.finished
    assert set(emu.received) == first - refused
    untouched = [r for r in rows(app) if r.email.lower() not in first]
    assert {(r.status, r.attempts, r.claimed_by, r.lease_until, r.next_attempt_at)
            for r in untouched} == {(OutboxStatus.QUEUED.value, 0, None, None, None)}
    emu.inactive = set()
    app.__dict__.pop("provider", None)
    resumed = send_issue(app, issue, resume=True)
    assert resumed.finished and not emu.duplicates()
    assert set(emu.received) == set().union(*by_segment.values()) - refused


def test_a_refused_key_pauses_at_once_and_keeps_the_rows(loaded_app, emulators):
    emu = emulators("mailgun")
    app = app_for(loaded_app, "mailgun", emu)
    from mailer.settings import with_overrides

    app.settings = with_overrides(app.settings, provider_key="wrong")
    result = send_issue(app, the_issue(app))
    assert result.drain.paused and "401" in result.drain.paused
    assert result.counts["failed"] == 0 and result.counts["queued"] == 12
    assert emu.batches_accepted == 0


def test_mailgun_isolates_an_address_its_parser_refuses(loaded_app, emulators):
    emu = emulators("mailgun")
    bad = sorted(active_emails(loaded_app))[3]
    emu.invalid = {bad}
    app = app_for(loaded_app, "mailgun", emu)
    result = send_issue(app, the_issue(app))
    assert result.counts["sent"] == 11 and result.counts["failed"] == 1
    assert bad not in emu.received and len(emu.received) == 11


def test_a_message_too_large_for_the_provider_fails_before_sending(loaded_app, emulators,
                                                                   monkeypatch):
    from mailer.providers.postmark import PostmarkProvider

    monkeypatch.setattr(PostmarkProvider, "max_message_bytes", 20_000)
    emu = emulators("postmark")
    app = app_for(loaded_app, "postmark", emu)
    with pytest.raises(MessageTooLarge, match="at most 20,000"):
        send_issue(app, the_issue(app))
    assert emu.send_calls == 0
    with app.engine.connect() as conn:
        assert conn.execute(select(issues.c.status)).scalar() == IssueStatus.PAUSED.value


def crashed_brevo_claim(app, issue):
    """Enqueue the issue, claim 12 rows as worker 'crashed' under batch key 'k1' and send
    the first segment's rows to Brevo, then stop as a crash would: (dispatcher, group)."""
    from datetime import timedelta

    from mailer.store import outbox as box
    from mailer.store import outbox_fill

    enqueue(app, issue)
    dispatcher = app.dispatcher(worker="crashed")
    with app.engine.begin() as conn:
        claimed = box.claim_batch(conn, issue.id, "crashed", 12, app.clock.now(),
                                  timedelta(minutes=5), batch_key="k1")
        renders = outbox_fill.load_renders(conn, issue.id)
    segment = claimed[0].segment_key
    group = [r for r in claimed if r.segment_key == segment]
    app.provider.send_batch(dispatcher.batch_for(issue.id, renders[segment], segment, group))
    return dispatcher, group


@pytest.mark.parametrize("claimed_at", ["recorded", "before 0015"])
def test_brevo_trusts_its_idempotency_key_only_while_brevo_remembers_it(loaded_app, emulators,
                                                                       claimed_at):
    """The key's age counts from the claim's claimed_at; a row claimed before migration
    0015 has none and is judged by its lease."""
    from datetime import timedelta

    emu = emulators("brevo")
    app = app_for(loaded_app, "brevo", emu)
    issue = the_issue(app)
    dispatcher, group = crashed_brevo_claim(app, issue)
    with app.engine.begin() as conn:  # the crash was an hour ago: the key is forgotten
        hour_ago = app.clock.now() - timedelta(hours=1)
        conn.execute(outbox.update().values(
            lease_until=hour_ago,
            claimed_at=hour_ago - timedelta(minutes=5) if claimed_at == "recorded" else None))
    emu.idempotency_keys.clear()
    assert dispatcher.resume_stranded(issue.id) == 12
    result = send_issue(app, issue)
    assert result.finished and len(emu.received) == 12
    declared = {r.email.lower() for r in rows(app) if r.possible_duplicate}
    assert set(emu.duplicates()) == {r.email.lower() for r in group} <= declared


def test_a_claim_in_flight_across_migration_0015_is_judged_by_its_lease(loaded_app, emulators):
    """A claim sent to Brevo by a version from before migration 0015 crashes; after the
    upgrade its rows have no claimed_at, and their lease (run out a moment ago) still tells
    that Brevo remembers the key: the identical batch is resent and deduplicated."""
    from datetime import timedelta

    from sqlalchemy import inspect, text

    from mailer.store.db import upgrade

    emu = emulators("brevo")
    app = app_for(loaded_app, "brevo", emu)
    issue = the_issue(app)
    dispatcher, group = crashed_brevo_claim(app, issue)
    with app.engine.begin() as conn:  # back to before 0015, the crashed claim's lease over
        conn.execute(text("ALTER TABLE outbox DROP COLUMN claimed_at"))
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0015'"))
        conn.execute(text("UPDATE outbox SET lease_until = :t"),
                     {"t": app.clock.now() - timedelta(seconds=1)})
    app.engine.dispose()  # no connection keeps statements prepared for the old table
    assert upgrade(app.engine) == ["0015"]
    assert "claimed_at" in {c["name"] for c in inspect(app.engine).get_columns("outbox")}
    assert {r.claimed_at for r in rows(app)} == {None}
    assert dispatcher.resume_stranded(issue.id) == 12
    assert len(emu.received) == 12 and not emu.duplicates()  # the other segments: new keys
    assert {(r.status, r.possible_duplicate) for r in rows(app)} == {(OutboxStatus.SENT.value,
                                                                       False)}


def test_a_drain_hands_the_garbage_collector_back_as_it_found_it():
    import gc

    from mailer.delivery.heap import settled_heap

    before = gc.get_threshold()
    with settled_heap():
        assert gc.get_threshold()[0] >= before[0] and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), settled_heap():  # also after an error inside
        raise RuntimeError
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


@pytest.mark.parametrize("name", ["sendgrid", "postmark"])
def test_who_leaves_after_the_issue_was_queued_does_not_get_it(loaded_app, emulators, name):
    """Unsubscribed, bounced or erased between queueing and sending (a paused issue resumed
    later, a crashed send rerun, `mailer worker`s starting late): their rows are skipped
    with the reason, the others are sent, and the issue is done."""
    emu = emulators(name)
    app = app_for(loaded_app, name, emu)
    issue = the_issue(app)
    enqueue(app, issue)
    unsubscribed, bounced, erased = sorted(active_emails(app))[:3]
    now = app.clock.now()
    with app.engine.begin() as conn:
        for email, status in ((unsubscribed, SubscriberStatus.UNSUBSCRIBED),
                              (bounced, SubscriberStatus.BOUNCED)):
            subs.set_status(conn, subs.find_by_email(conn, email).id, status, now, "test")
    assert forget(app, erased, "test")
    staying = active_emails(app)
    result = send_issue(app, issue)
    assert result.finished and result.counts["sent"] == len(staying) == 9
    assert set(emu.received) == staying and not emu.duplicates()
    skipped = [r for r in rows(app) if r.status == OutboxStatus.SKIPPED.value]
    assert len(skipped) == result.counts["skipped"] == 3
    assert all(r.last_error and r.sent_at is None for r in skipped)


@pytest.mark.parametrize("name", ["sendgrid", "brevo"])
def test_one_address_the_provider_refuses_fails_alone(loaded_app, emulators, name):
    """SendGrid and Brevo refuse a whole call for one invalid address (legacy data): the rest of
    the batch must still go out, and the issue must not pause on it again and again."""
    from tests.delivery_support import add_subscribers

    add_subscribers(loaded_app.engine, 30, loaded_app.clock.now())
    with loaded_app.engine.begin() as conn:
        conn.execute(subscribers.update().where(subscribers.c.email == "lezer.17@example.org")
                     .values(email="kapot@adres"))
    emu = emulators(name)
    app = app_for(loaded_app, name, emu)
    result = send_issue(app, the_issue(app))
    assert result.finished and not result.drain.paused
    assert result.counts["sent"] == 41 and result.counts["failed"] == 1
    assert "kapot@adres" not in emu.received and not emu.duplicates()
    failed = [r for r in rows(app) if r.status == "failed"]
    assert [r.email for r in failed] == ["kapot@adres"] and "valid" in failed[0].last_error


def test_a_provider_name_that_does_not_resolve_sent_nothing(loaded_app, emulators):
    """A DNS failure means no connection was ever made: not 'maybe accepted' (which makes
    every row of the batch a possible duplicate once it is sent)."""
    from mailer.errors import ProviderError
    from mailer.sending import send_test

    app = app_for(loaded_app, "sendgrid", emulators("sendgrid")).with_settings(
        provider_url="http://mail-api.invalid")
    with pytest.raises(ProviderError) as caught:
        send_test(app, the_issue(app), ["a@example.org"])
    assert caught.value.retryable and not caught.value.maybe_accepted


def test_who_is_erased_or_complains_while_their_batch_is_in_flight_stays_so(loaded_app,
                                                                            emulators):
    """The provider refuses both addresses as inactive (a bounce), but one person was erased
    and the other complained while the call was under way: erasure is final (the refusal
    recorded afterwards names the address no more than `forget` left it) and a complaint
    outranks a bounce, as for a webhook."""
    emu = emulators("postmark")
    erased, complained = sorted(active_emails(loaded_app))[:2]
    emu.inactive = {erased, complained}
    app = app_for(loaded_app, "postmark", emu)
    provider = app.provider
    send_batch = provider.send_batch

    def meanwhile(batch):
        if erased in {r.email for r in batch.recipients}:
            assert forget(app, erased, "test")
            with app.engine.begin() as conn:
                subs.set_status(conn, subs.find_by_email(conn, complained).id,
                                SubscriberStatus.COMPLAINED, app.clock.now(), "test")
        return send_batch(batch)

    provider.send_batch = meanwhile
    result = send_issue(app, the_issue(app))
    assert result.finished and result.counts["failed"] == 2
    with app.engine.connect() as conn:
        status = {r.subscriber_id: r.status for r in conn.execute(
            select(outbox.c.subscriber_id, subscribers.c.status)
            .join(subscribers, subscribers.c.id == outbox.c.subscriber_id)
            .where(outbox.c.status == OutboxStatus.FAILED.value))}
    assert sorted(status.values()) == ["complained", "erased"]
    # Postmark's refusal names the address; recorded after the erasure, it must not.
    assert not [r for r in rows(app) if erased in str(r.last_error).lower()]


def test_copies_written_for_people_erased_while_their_batch_is_in_flight_are_deleted(
        loaded_app):
    """Two people of one batch are erased while the file provider writes it: `forget`
    deleted their earlier copies, and the copies this batch writes go once it is recorded."""
    app = loaded_app
    provider = app.provider
    send_batch = provider.send_batch
    erased: list[str] = []

    def meanwhile(batch):
        if not erased and len(batch.recipients) >= 2:
            erased.extend(r.email for r in batch.recipients[:2])
            for email in erased:
                assert forget(app, email, "test")
        return send_batch(batch)

    provider.send_batch = meanwhile
    assert send_issue(app, the_issue(app)).finished
    assert len(erased) == 2
    folder = app.settings.path(app.settings.outbox_dir)
    assert list(folder.glob("issue-*/*.eml"))  # the others' copies stay
    assert copies_for(folder, erased) == []
