"""A subscribe request for a known address changes nothing until the address confirms it.

The requested name and preferences wait in `subscription_requests`; only the confirm link
sent for that very request applies them, and a newer request supersedes an older one.
"""

import json
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from mailer.clock import FixedClock
from mailer.links import TokenInvalid
from mailer.models import Preferences, SubscriberStatus
from mailer.store import privacy
from mailer.store import subscribers as subs
from mailer.store.db import make_engine, upgrade
from mailer.store.tables import subscription_requests
from mailer.subscriptions import (
    ConfirmOutcome,
    SubscribeOutcome,
    confirm,
    forget,
    purge_pending,
    subscribe,
    unsubscribe,
)
from tests.subscription_support import ctx, ledger, row_of
from tests.test_cli import invoke

OWN = Preferences(frozenset({"magazine"}), frozenset({"onderwijs"}))
STRANGER = Preferences(frozenset({"agenda"}), frozenset({"jeugdhulp"}))


def requests_of(app, sid):
    with app.engine.connect() as conn:
        return conn.execute(select(subscription_requests).where(
            subscription_requests.c.subscriber_id == sid)).all()


def known(app, status):
    """Anna's own record in a status: pending (never confirmed) or unsubscribed."""
    sid = subscribe(app, "anna@example.org", "Anna", OWN, ctx(app)).mail.subscriber_id
    if status is SubscriberStatus.UNSUBSCRIBED:
        assert confirm(app, sid, ctx(app)) is ConfirmOutcome.CONFIRMED
        unsubscribe(app, sid, ctx(app))
    return sid


def later(app, minutes=61):
    """The app a while later: past the mail limit's window."""
    return app.with_clock(FixedClock(app.clock.now() + timedelta(minutes=minutes)))


@pytest.mark.parametrize("status", [SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED])
def test_a_stranger_request_changes_nothing_stored_until_confirmed(app, status):
    sid = known(app, status)
    before = row_of(app, sid)
    result = subscribe(app, "anna@example.org", "Mallory", STRANGER, ctx(app))
    assert result.outcome is SubscribeOutcome.RENEWED and result.mail.kind == "confirm"
    assert result.mail.request_id is not None
    assert row_of(app, sid) == before  # name, preferences, segment, updated_at: untouched
    [waiting] = requests_of(app, sid)
    assert (waiting.name, waiting.sections, waiting.themes) == ("Mallory", ["agenda"],
                                                                ["jeugdhulp"])
    request_event = ledger(app, sid)[-1]
    assert request_event.event == "subscribe" and request_event.ip == "192.0.2.0"
    assert request_event.details == {"request": waiting.id, "sections": ["agenda"],
                                     "themes": ["jeugdhulp"]}
    # The owner reads the mail and confirms: now, and only now, the request applies.
    assert confirm(app, sid, ctx(app), result.mail.request_id) is ConfirmOutcome.CONFIRMED
    after = row_of(app, sid)
    assert after.status == "active" and after.name == "Mallory"
    assert after.segment_key == STRANGER.key()
    assert requests_of(app, sid) == []
    confirmed = ledger(app, sid)[-1]
    assert confirmed.event == "confirm"
    assert confirmed.details == {"from": status.value, "request": waiting.id,
                                 "sections": ["agenda"], "themes": ["jeugdhulp"],
                                 "name_changed": True}


def test_an_older_link_never_applies_a_newer_request(app):
    sid = known(app, SubscriberStatus.PENDING)  # Anna's own first link: no request in it
    stranger = subscribe(app, "anna@example.org", "Mallory", STRANGER, ctx(app)).mail
    assert confirm(app, sid, ctx(app)) is ConfirmOutcome.CONFIRMED  # Anna's own link
    row = row_of(app, sid)
    assert (row.name, row.segment_key) == ("Anna", OWN.key())
    assert requests_of(app, sid) == []  # confirming dropped the stranger's request
    assert ledger(app, sid)[-1].details == {"from": "pending", "sections": ["magazine"],
                                            "themes": ["onderwijs"]}
    assert confirm(app, sid, ctx(app), stranger.request_id) is ConfirmOutcome.ALREADY
    assert row_of(app, sid).segment_key == OWN.key()


def test_a_newer_request_supersedes_an_older_one(app):
    sid = known(app, SubscriberStatus.UNSUBSCRIBED)
    own = subscribe(app, "anna@example.org", "Anna B", OWN, ctx(app)).mail
    stranger = subscribe(later(app), "anna@example.org", "Mallory", STRANGER, ctx(app)).mail
    assert own.request_id != stranger.request_id
    assert len(requests_of(app, sid)) == 1
    assert confirm(app, sid, ctx(app), own.request_id) is ConfirmOutcome.SUPERSEDED
    row = row_of(app, sid)
    assert (row.status, row.name) == ("unsubscribed", "Anna")  # the old link did nothing
    assert confirm(app, sid, ctx(app), stranger.request_id) is ConfirmOutcome.CONFIRMED
    assert row_of(app, sid).segment_key == STRANGER.key()


def test_request_ids_are_never_reused_after_a_confirmation(app):
    """A link binds a request id: a new request must never get the id of one that was
    confirmed (SQLite would hand out a deleted row's id again without AUTOINCREMENT)."""
    sid = known(app, SubscriberStatus.UNSUBSCRIBED)
    first = subscribe(app, "anna@example.org", "Anna", OWN, ctx(app)).mail
    confirm(app, sid, ctx(app), first.request_id)
    unsubscribe(app, sid, ctx(app))
    second = subscribe(later(app), "anna@example.org", "Mallory", STRANGER, ctx(app)).mail
    assert second.request_id != first.request_id
    assert confirm(app, sid, ctx(app), first.request_id) is ConfirmOutcome.SUPERSEDED
    assert row_of(app, sid).name == "Anna"


def test_a_request_over_the_mail_limit_is_not_kept(app):
    sid = known(app, SubscriberStatus.PENDING)
    for _ in range(2):
        assert subscribe(app, "anna@example.org", "", OWN, ctx(app)).mail is not None
    limited = subscribe(app, "anna@example.org", "Mallory", STRANGER, ctx(app))
    assert limited.outcome is SubscribeOutcome.MAIL_LIMITED
    assert requests_of(app, sid)[0].name == ""  # no mail went out, so no request replaced


def test_an_active_subscriber_gets_a_preferences_link_and_nothing_changes(app):
    sid = known(app, SubscriberStatus.PENDING)
    confirm(app, sid, ctx(app))
    before, events = row_of(app, sid), len(ledger(app, sid))
    result = subscribe(app, "anna@example.org", "Mallory", STRANGER, ctx(app))
    assert result.outcome is SubscribeOutcome.ALREADY_ACTIVE
    assert result.mail.kind == "already" and result.mail.request_id is None
    assert row_of(app, sid) == before and requests_of(app, sid) == []
    assert len(ledger(app, sid)) == events
    app.subscriber_mail.send(result.mail)
    from tests.webhelpers import link_in, mails_in
    assert "/voorkeuren/" in link_in(mails_in(app.settings.outbox_dir)[-1], "voorkeuren")


def test_a_request_nobody_can_confirm_any_more_is_dropped(app):
    """Back through the owner's own preferences link, or bounced: the waiting request can
    no longer be confirmed, so the data it holds goes."""
    from mailer.subscriptions import resubscribe

    sid = known(app, SubscriberStatus.UNSUBSCRIBED)
    subscribe(app, "anna@example.org", "Mallory", STRANGER, ctx(app))
    assert resubscribe(app, sid, ctx(app)) is True
    assert requests_of(app, sid) == [] and row_of(app, sid).name == "Anna"
    bert = known_as(app, "bert@example.org")
    subscribe(app, "bert@example.org", "Mallory", STRANGER, ctx(app))
    with app.engine.begin() as conn:
        subs.set_status(conn, bert, SubscriberStatus.BOUNCED, app.clock.now(), "webhook:t")
    assert requests_of(app, bert) == []


def known_as(app, address):
    return subscribe(app, address, "", OWN, ctx(app)).mail.subscriber_id


def test_confirm_links_bind_the_request(app):
    links = app.links
    token = links.confirm_url(7, 2, 31).rsplit("/", 1)[1]
    claims = links.read("confirm", token)
    assert (claims.subscriber_id, claims.version, claims.request) == (7, 2, 31)
    plain = links.read("confirm", links.confirm_url(7, 2).rsplit("/", 1)[1])
    assert plain.request is None
    with pytest.raises(TokenInvalid):  # only a confirm link carries a request
        links.read("unsubscribe", links._serializer("unsubscribe").dumps([7, 2, 31]))


def test_forget_and_access_cover_the_waiting_request(app):
    sid = known(app, SubscriberStatus.UNSUBSCRIBED)
    subscribe(app, "anna@example.org", "Mallory", STRANGER, ctx(app))
    with app.engine.connect() as conn:
        held = privacy.data_held(conn, "anna@example.org")
    assert held["subscriber"]["name"] == "Anna"
    assert held["pending_request"] == {
        "name": "Mallory", "sections": ["agenda"], "themes": ["jeugdhulp"],
        "requested_at": app.clock.now().isoformat()}
    assert forget(app, "anna@example.org", "admin:test") is True
    assert requests_of(app, sid) == []
    assert all(e.details == {} for e in ledger(app, sid)[:-1])  # request details gone too


def test_purge_drops_stale_requests_and_keeps_fresh_ones(app):
    stale_pending = known(app, SubscriberStatus.PENDING)
    subscribe(app, "anna@example.org", "Mallory", STRANGER, ctx(app))
    left = subscribe(app, "bert@example.org", "Bert", OWN, ctx(app)).mail.subscriber_id
    confirm(app, left, ctx(app))
    unsubscribe(app, left, ctx(app))
    subscribe(app, "bert@example.org", "Mallory", STRANGER, ctx(app))
    cora = subscribe(app, "cora@example.org", "Cora", OWN, ctx(app)).mail.subscriber_id
    month = app.with_clock(FixedClock(app.clock.now() + timedelta(days=31)))
    fresh = subscribe(month, "cora@example.org", "Cora", STRANGER, ctx(app)).mail
    assert purge_pending(month) == 1
    assert row_of(app, stale_pending).status == "erased"
    assert requests_of(app, stale_pending) == [] and requests_of(app, left) == []
    assert row_of(app, left).status == "unsubscribed" and row_of(app, left).name == "Bert"
    # Cora's row is old but her request is fresh: its link must still work.
    assert row_of(app, cora).status == "pending" and len(requests_of(app, cora)) == 1
    assert confirm(month, cora, ctx(app), fresh.request_id) is ConfirmOutcome.CONFIRMED


def test_migration_0013_adds_the_request_table(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:  # back to before 0013
        conn.execute(text("DROP TABLE subscription_requests"))
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0013'"))
    assert upgrade(engine) == ["0013"]
    found = inspect(engine)
    assert {c["name"] for c in found.get_columns("subscription_requests")} == {
        c.name for c in subscription_requests.columns}
    assert [u["column_names"] for u in found.get_unique_constraints(
        "subscription_requests")] == [["subscriber_id"]]
    engine.dispose()


def test_show_and_export_show_the_waiting_request(app, tmp_path):
    env = {"MAILER_DATABASE_URL": app.settings.database_url, "MAILER_SECRET_KEY": "k" * 32,
           "MAILER_NOW": "2026-12-03T09:00", "MAILER_OUTBOX_DIR": str(tmp_path / "outbox")}
    known(app, SubscriberStatus.PENDING)
    subscribe(app, "anna@example.org", "Mallory", STRANGER, ctx(app))
    shown = json.loads(invoke(["subscribers", "show", "anna@example.org", "--json"],
                              env).output)
    assert shown["subscriber"]["name"] == "Anna"
    assert shown["pending_request"]["name"] == "Mallory"
    text_view = invoke(["subscribers", "show", "anna@example.org"], env).output
    assert "pending request" in text_view and "agenda" in text_view
    exported = json.loads(invoke(["subscribers", "export", "--format", "json"], env).output)
    assert exported[0]["name"] == "Anna"
    assert exported[0]["pending_request"]["sections"] == ["agenda"]
    listed = json.loads(invoke(["subscribers", "list", "--json"], env).output)
    assert listed == exported
    csv_export = invoke(["subscribers", "export"], env)  # stays importable as it was
    assert csv_export.exit_code == 0 and "Mallory" not in csv_export.output
