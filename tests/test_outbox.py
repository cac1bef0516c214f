from datetime import date, timedelta
from email import message_from_bytes, policy

from sqlalchemy import select, update

from mailer.compose import issue_moment
from mailer.models import (
    Batch,
    DeliveryOutcome,
    OutboxStatus,
    Preferences,
    Recipient,
    SubscriberStatus,
)
from mailer.sending import enqueue, send_issue, store_issue
from mailer.store import outbox as box
from mailer.store import outbox_fill
from mailer.store import subscribers as subs
from mailer.store.tables import outbox


def the_issue(app):
    return store_issue(app, issue_moment(app.settings, app.clock, date(2026, 12, 3)))


def eml_files(app, issue):
    return sorted((app.settings.path(app.settings.outbox_dir) / f"issue-{issue.id}").glob("*.eml"))


def test_sending_twice_sends_nobody_twice(loaded_app):
    issue = the_issue(loaded_app)
    first = send_issue(loaded_app, issue)
    assert first.finished and first.counts["sent"] == 12
    second = send_issue(loaded_app, the_issue(loaded_app))
    assert second.enqueued == 0 and second.drain.sent == 0
    files = eml_files(loaded_app, issue)
    assert len(files) == 12
    recipients = [message_from_bytes(f.read_bytes(), policy=policy.default)["To"] for f in files]
    assert len(set(recipients)) == 12


def test_each_message_has_its_own_signed_unsubscribe_link(loaded_app):
    issue = the_issue(loaded_app)
    send_issue(loaded_app, issue)
    links = set()
    for path in eml_files(loaded_app, issue):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        url = message["List-Unsubscribe"].split(">")[0].lstrip("<")
        token = url.rsplit("/", 1)[1]
        claims = loaded_app.links.read("unsubscribe", token)
        assert url in message.get_body(("html",)).get_content()
        links.add(claims.subscriber_id)
    assert len(links) == 12


def test_a_crash_mid_batch_is_reconciled_without_duplicates(loaded_app):
    issue = the_issue(loaded_app)
    enqueue(loaded_app, issue)
    dispatcher = loaded_app.dispatcher(worker="crashed")
    with loaded_app.engine.begin() as conn:
        claimed = box.claim_batch(conn, issue.id, "crashed", 6, loaded_app.clock.now(),
                                  timedelta(minutes=5))
    # The provider wrote three of the six messages, then the process died.
    with loaded_app.engine.connect() as conn:
        renders = outbox_fill.load_renders(conn, issue.id)
    written = claimed[:3]
    for row in written:
        batch = dispatcher.batch_for(issue.id, renders[row.segment_key], row.segment_key, [row])
        assert loaded_app.provider.send_batch(batch)[0].outcome is DeliveryOutcome.SENT
    decided = dispatcher.resume_stranded(issue.id, include_live_leases=True)
    assert decided == 6
    result = send_issue(loaded_app, issue)
    assert result.finished and result.counts["sent"] == 12
    assert result.counts["possible_duplicates"] == 0
    assert len(eml_files(loaded_app, issue)) == 12


def test_expired_leases_are_taken_over_and_live_ones_are_not(loaded_app):
    issue = the_issue(loaded_app)
    enqueue(loaded_app, issue)
    with loaded_app.engine.begin() as conn:
        box.claim_batch(conn, issue.id, "other", 4, loaded_app.clock.now(), timedelta(minutes=5))
    dispatcher = loaded_app.dispatcher()
    assert dispatcher.resume_stranded(issue.id) == 0  # another worker's live lease
    with loaded_app.engine.begin() as conn:
        conn.execute(update(outbox).values(lease_until=loaded_app.clock.now() - timedelta(1)))
    assert dispatcher.resume_stranded(issue.id) == 4


def test_a_segment_with_nothing_is_skipped_and_recorded(loaded_app):
    with loaded_app.engine.begin() as conn:
        subs.add_subscriber(conn, email="leeg@example.org", name="Leeg",
                            preferences=Preferences(frozenset({"magazine"}),
                                                    frozenset({"nergens-over"})),
                            status=SubscriberStatus.ACTIVE, source="test",
                            now=loaded_app.clock.now())
    issue = the_issue(loaded_app)
    result = send_issue(loaded_app, issue)
    assert result.counts["skipped"] == 1 and result.counts["sent"] == 12
    with loaded_app.engine.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.email == "leeg@example.org")).one()
    assert row.status == OutboxStatus.SKIPPED.value


def test_rendering_happens_once_per_segment(loaded_app):
    issue = the_issue(loaded_app)
    calls = []
    original = loaded_app.renderer.render
    loaded_app.renderer.render = lambda i, p: calls.append(p.key()) or original(i, p)
    send_issue(loaded_app, issue)
    with loaded_app.engine.connect() as conn:
        segments = set(conn.execute(select(outbox.c.segment_key).distinct()).scalars())
    assert sorted(calls) == sorted(segments) and len(segments) < 12


def test_a_header_injection_fails_only_that_recipient(loaded_app):
    good = Recipient(1, 1, "a@example.org", "Anna", "<m1@x>", {"greeting": "Beste Anna,",
                     "unsubscribe_url": "https://u/1", "preferences_url": "https://p/1"})
    evil = Recipient(2, 2, "b@example.org", "Bob\r\nBcc: all@example.org", "<m2@x>",
                     {"greeting": "Hoi", "unsubscribe_url": "https://u/2",
                      "preferences_url": "https://p/2"})
    batch = Batch(issue_id=99, segment_key="k", subject="Onderwerp", html="<p>%%greeting%%</p>",
                  text="%%greeting%%", recipients=(good, evil))
    statuses = loaded_app.provider.send_batch(batch)
    assert [s.outcome for s in statuses] == [DeliveryOutcome.SENT, DeliveryOutcome.INVALID]


def test_names_are_cleaned_of_control_characters():
    assert subs.clean_name("Bob\r\nBcc: x@example.org") == "Bob Bcc: x@example.org"


def test_a_test_send_goes_only_to_the_given_addresses_and_is_not_the_issue_send(loaded_app):
    from mailer.sending import send_test

    issue = the_issue(loaded_app)
    result = send_test(loaded_app, issue, ["Redactie@Example.org"])
    assert result == [("Redactie@example.org", "sent")]
    with loaded_app.engine.connect() as conn:
        assert box.status_counts(conn, issue.id)["sent"] == 0
    files = list(loaded_app.settings.path(loaded_app.settings.outbox_dir).rglob("*.eml"))
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["Subject"].startswith("[TEST] WeerbaarNL nr. 1")


def test_every_test_send_has_a_message_id_of_its_own(loaded_app):
    # Gmail drops a message whose Message-ID the mailbox already holds: with one fixed id
    # for every proof, an editor saw only the first proof ever sent to them.
    from mailer.sending import send_test

    issue = the_issue(loaded_app)
    outbox = loaded_app.settings.path(loaded_app.settings.outbox_dir)
    for _ in range(2):
        send_test(loaded_app, issue, ["redactie@example.org", "eindredactie@example.org"])
    ids = [message_from_bytes(f.read_bytes(), policy=policy.default)["Message-ID"]
           for f in sorted(outbox.rglob("*.eml"))]  # each proof keeps its own file
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(i.startswith("<") and i.endswith("@platformjep.example.nl>") for i in ids)


def test_a_claim_and_its_outcomes_cover_every_row_of_a_large_batch(loaded_app):
    # The id list of a batch travels as one parameter (an array on PostgreSQL, JSON text
    # for json_each on SQLite): every row of a batch far beyond SQLite's old 999-parameter
    # limit is claimed and then recorded, and only the fenced worker's rows change.
    from mailer.store.outbox import Outcome
    from tests.delivery_support import add_subscribers

    add_subscribers(loaded_app.engine, 1500, loaded_app.clock.now())
    issue = the_issue(loaded_app)
    enqueue(loaded_app, issue)
    now = loaded_app.clock.now()
    with loaded_app.engine.begin() as conn:
        claimed = box.claim_batch(conn, issue.id, "w1", 1200, now, timedelta(minutes=5))
    assert len(claimed) == 1200
    with loaded_app.engine.connect() as conn:
        sending = conn.execute(select(outbox.c.id).where(
            outbox.c.claimed_by == "w1", outbox.c.status == "sending")).scalars().all()
    assert sorted(sending) == [r.id for r in claimed]
    outcomes = [Outcome(r.id, OutboxStatus.SENT, provider_message_id="p") for r in claimed]
    with loaded_app.engine.begin() as conn:
        fenced = box.record_outcomes(conn, outcomes[:600], now, "someone else")
        recorded = box.record_outcomes(conn, outcomes, now, "w1")
        counts = box.status_counts(conn, issue.id)
    assert counts["sent"] == 1200 and counts["sending"] == 0 and counts["queued"] == 312
    assert (fenced.rows, fenced.missed) == (0, 600)
    assert (recorded.by_status[OutboxStatus.SENT], recorded.missed) == (1200, 0)


def test_outcomes_with_a_provider_id_per_row_are_one_update_per_state(loaded_app):
    # Per-row provider ids (Brevo, Postmark) travel with the ids in the group's UPDATE;
    # each row gets its own, rows of another state theirs, and a fenced-out worker none.
    from mailer.store.outbox import Outcome

    issue = the_issue(loaded_app)
    enqueue(loaded_app, issue)
    now = loaded_app.clock.now()
    with loaded_app.engine.begin() as conn:
        claimed = box.claim_batch(conn, issue.id, "w1", 8, now, timedelta(minutes=5))
    sent = [Outcome(r.id, OutboxStatus.SENT, provider_message_id=f"<{r.id}.é'@p>")
            for r in claimed[:5]]
    retry = [Outcome(r.id, OutboxStatus.QUEUED, error="later", retry_at=now) for r in claimed[5:7]]
    failed = [Outcome(claimed[7].id, OutboxStatus.FAILED, error="nee", provider_message_id="x")]
    with loaded_app.engine.begin() as conn:
        fenced = box.record_outcomes(conn, [Outcome(r.id, OutboxStatus.SENT,
                                                    provider_message_id="no")
                                            for r in claimed], now, "someone else")
        recorded = box.record_outcomes(conn, sent + retry + failed, now, "w1")
        late = box.record_outcomes(conn, sent, now, "w1")  # decided already: changes nothing
        stored = dict(conn.execute(select(outbox.c.id, outbox.c.provider_message_id)
                                   .where(outbox.c.id.in_([r.id for r in claimed]))).all())
        counts = box.status_counts(conn, issue.id)
    assert stored == {o.outbox_id: o.provider_message_id for o in sent + retry + failed}
    assert counts["sent"] == 5 and counts["failed"] == 1 and counts["sending"] == 0
    assert (fenced.rows, fenced.missed, late.rows, late.missed) == (0, 8, 0, 5)
    assert recorded.by_status == {OutboxStatus.SENT: 5, OutboxStatus.QUEUED: 2,
                                  OutboxStatus.FAILED: 1} and recorded.missed == 0
