"""Subscriber services on both databases: double opt-in, ledger, preferences, erasure."""

from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.clock import FixedClock
from mailer.models import (
    Batch,
    DeliveryOutcome,
    Preferences,
    Recipient,
    SubscriberStatus,
)
from mailer.store import privacy
from mailer.store import subscribers as subs
from mailer.store.tables import consent_events, outbox, suppressions
from mailer.subscriber_import import CsvRow, import_rows, parse_csv
from mailer.subscriptions import (
    ConfirmOutcome,
    SubscribeOutcome,
    confirm,
    consent_context,
    forget,
    mail_job,
    purge_pending,
    resubscribe,
    strip_versions,
    subscribe,
    truncate_ip,
    unsubscribe,
)
from tests.conftest import make_settings
from tests.subscription_support import PREFS, UA, ctx, ledger
from tests.webhelpers import link_in, mails_in


def test_double_opt_in_lifecycle_and_ledger(app):
    result = subscribe(app, "anna@example.org", "Anna de Boer", PREFS, ctx(app))
    assert result.outcome is SubscribeOutcome.NEW and result.mail.kind == "confirm"
    sid = result.mail.subscriber_id
    with app.engine.connect() as conn:
        sub = subs.subscriber_by_id(conn, sid)
        row = subs.subscriber_row(conn, sid)
    assert sub.status is SubscriberStatus.PENDING
    assert row.segment_key == PREFS.key() == "s=magazine;t=onderwijs"
    assert confirm(app, sid, ctx(app)) is ConfirmOutcome.CONFIRMED
    assert confirm(app, sid, ctx(app)) is ConfirmOutcome.ALREADY  # idempotent
    new = Preferences(frozenset({"magazine", "agenda"}), frozenset({"jeugdhulp", "onderwijs"}))
    assert subs_change(app, sid, new, "Anna") is True
    assert subs_change(app, sid, new, "Anna") is False
    with app.engine.connect() as conn:
        assert subs.subscriber_row(conn, sid).segment_key == new.key()
    assert unsubscribe(app, sid, ctx(app)).kind == "goodbye"
    assert unsubscribe(app, sid, ctx(app)) is None  # idempotent, no second goodbye
    assert resubscribe(app, sid, ctx(app)) is True
    events = ledger(app, sid)
    assert [e.event for e in events] == ["subscribe", "confirm", "preferences",
                                         "unsubscribe", "resubscribe"]
    first = events[0]
    assert first.source == "web:test" and first.consent_text_version == "2026-11"
    assert first.ip == "192.0.2.0" and "120" not in first.user_agent  # truncated policy
    assert events[2].details == {"sections": ["agenda", "magazine"],
                                 "themes": ["jeugdhulp", "onderwijs"], "name_changed": True}


def subs_change(app, sid, prefs, name):
    from mailer.subscriptions import change_preferences
    return change_preferences(app, sid, prefs, name, ctx(app))


@pytest.mark.parametrize("policy, ip, ua", [
    ("stored", "192.0.2.77", UA), ("truncated", "192.0.2.0", "Mozilla (X11; Linux x86_64) "
     "AppleWebKit Chrome Safari"), ("none", None, None)])
def test_ip_policy(tmp_path, policy, ip, ua):
    settings = make_settings(tmp_path, "sqlite:///unused.db", store_ip=policy)
    context = consent_context(settings, "web:test", "192.0.2.77", UA)
    assert (context.ip, context.user_agent) == (ip, ua)


def test_ip_truncation():
    assert truncate_ip("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::"
    assert truncate_ip("not an ip") is None
    assert strip_versions("curl/8.5.0") == "curl"


def test_the_form_never_enumerates_and_limits_mails(app):
    first = subscribe(app, "bob@example.org", "", PREFS, ctx(app))
    confirm(app, first.mail.subscriber_id, ctx(app))
    again = subscribe(app, "bob@example.org", "Mallory", Preferences(), ctx(app))
    assert again.outcome is SubscribeOutcome.ALREADY_ACTIVE and again.mail.kind == "already"
    with app.engine.connect() as conn:  # an active subscriber's choices are not overwritten
        bob = subs.find_by_email(conn, "bob@example.org")
    assert (bob.preferences, bob.name) == (PREFS, "")
    third = subscribe(app, "bob@example.org", "", PREFS, ctx(app))
    assert third.mail is not None
    assert subscribe(app, "bob@example.org", "", PREFS, ctx(app)).outcome is \
        SubscribeOutcome.MAIL_LIMITED  # limit 3 per address per window
    later = app.with_clock(FixedClock(app.clock.now() + timedelta(minutes=61)))
    assert subscribe(later, "bob@example.org", "", PREFS, ctx(app)).mail is not None


def test_forget_deletes_the_copies_the_file_provider_wrote(app):
    # "a+b" and "a_b" share a safe file name; only the forgotten address's copy goes.
    batch = Batch(issue_id=7, segment_key="s", subject="Nieuwsbrief", html="<p>x</p>",
                  text="x", recipients=(
                      Recipient(1, 1, "A+B@example.org", "A", "<1@example.org>", {}),
                      Recipient(2, 2, "a_b@example.org", "B", "<2@example.org>", {})))
    assert all(s.outcome is DeliveryOutcome.SENT for s in app.provider.send_batch(batch))
    folder = app.settings.path(app.settings.outbox_dir) / "issue-7"
    assert len(list(folder.glob("*.eml"))) == 2
    forget(app, "a+b@example.org", "admin:test")
    assert [p.name for p in folder.glob("*.eml")] == ["00000002-a_b@example.org.eml"]


def test_suppressed_and_erased_addresses_get_nothing(app):
    forget(app, "gone@example.org", "admin:test")
    assert subscribe(app, "gone@example.org", "", PREFS, ctx(app)).outcome is \
        SubscribeOutcome.SUPPRESSED
    with app.engine.connect() as conn:
        assert subs.find_by_email(conn, "gone@example.org") is None


def test_forget_erases_personal_data_and_keeps_a_hash(app):
    result = subscribe(app, "carla@example.org", "Carla", PREFS, ctx(app))
    sid = result.mail.subscriber_id
    confirm(app, sid, ctx(app))
    with app.engine.begin() as conn:
        conn.execute(outbox.insert().values(
            issue_id=_issue(conn), subscriber_id=sid, email="carla@example.org",
            segment_key=PREFS.key(), status="sent", attempts=1, message_id="<m@x>",
            possible_duplicate=False, created_at=app.clock.now(), updated_at=app.clock.now()))
    assert forget(app, "carla@example.org", "admin:test") is True
    with app.engine.connect() as conn:
        row = subs.subscriber_row(conn, sid)
        assert row.email == privacy.erased_address(sid) and row.name == ""
        assert row.status == "erased" and row.token_version == 2
        assert conn.execute(select(outbox.c.email)).scalar() == privacy.erased_address(sid)
        assert subs.is_suppressed(conn, "carla@example.org")
        assert conn.execute(select(suppressions.c.reason)).scalar() == "erased"
        assert privacy.data_held(conn, "carla@example.org")["subscriber"] is None
    events = ledger(app, sid)
    assert events[-1].event == "erase"
    assert all(e.ip is None and e.user_agent is None for e in events)


def test_forget_leaves_the_address_in_no_delivery_error(app):
    """Providers name the address in their refusals (Postmark's 406, an SMTP 550), and
    `mailer issues show` lists those errors: erasure must reach them too."""
    sid = _active(app, "Dirk@Example.org").id
    refusals = {"406 You tried to send to a recipient that has been marked as inactive. Found "
                "inactive addresses: dirk@example.org. Inactive recipients are ones that have "
                "generated a hard bounce or a spam complaint.",
                "550 5.1.1 <Dirk@Example.org>: Recipient address rejected: User unknown"}
    with app.engine.begin() as conn:
        for number, error in enumerate(sorted(refusals), start=1):
            conn.execute(outbox.insert().values(
                issue_id=_issue(conn, number), subscriber_id=sid, email="Dirk@Example.org",
                segment_key=PREFS.key(), status="failed", attempts=1,
                message_id=f"<{number}@x>", last_error=error, possible_duplicate=False,
                created_at=app.clock.now(), updated_at=app.clock.now()))
    assert forget(app, "dirk@example.org", "admin:test") is True
    with app.engine.connect() as conn:
        errors = conn.execute(select(outbox.c.last_error)).scalars().all()
    assert errors and not any("dirk@example.org" in e.lower() for e in errors)
    assert all(privacy.erased_address(sid) in e for e in errors)  # the reason stays readable


def test_forget_leaves_the_address_in_no_outbox_column(loaded_app):
    """The file provider's message id is the path of the .eml, which names the address
    (lower-cased, odd characters replaced)."""
    from sqlalchemy import update

    from mailer.sending import send_issue
    from mailer.store.tables import subscribers
    from tests.delivery_support import the_issue

    address = "Kees+Nieuws@example.org"
    with loaded_app.engine.begin() as conn:
        first = conn.execute(select(subscribers.c.id).order_by(subscribers.c.id)).scalar()
        conn.execute(update(subscribers).where(subscribers.c.id == first).values(email=address))
    send_issue(loaded_app, the_issue(loaded_app))
    forget(loaded_app, address, "admin:test")
    with loaded_app.engine.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.subscriber_id == first)).one()
    assert row.status == "sent" and row.provider_message_id
    assert not any("kees" in str(value).lower() for value in row)


def test_who_is_erased_while_their_batch_is_in_flight_leaves_no_trace(loaded_app):
    """`forget` cleans the outbox and deletes the file provider's copies, but a batch in
    flight is recorded afterwards: its answer (the .eml path names the address) and the
    copy written after the erasure must not bring the address back."""
    from mailer.sending import send_issue
    from tests.delivery_support import the_issue

    send_batch = loaded_app.provider.send_batch
    erased = []

    def meanwhile(batch):
        if not erased:
            erased.append(batch.recipients[0])
            assert forget(loaded_app, erased[0].email, "admin:test")
        return send_batch(batch)

    loaded_app.provider.send_batch = meanwhile
    result = send_issue(loaded_app, the_issue(loaded_app))
    assert result.finished and result.counts["sent"] == 12
    name = erased[0].email.split("@")[0].lower()
    with loaded_app.engine.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.id == erased[0].outbox_id)).one()
    assert row.email == privacy.erased_address(erased[0].subscriber_id)
    assert not any(name in str(value).lower() for value in row)
    folder = loaded_app.settings.path(loaded_app.settings.outbox_dir)
    copies = list(folder.rglob("*.eml"))
    assert len(copies) == 11
    assert not [p for p in copies if name in p.name.lower() or name in p.read_text().lower()]


def merged_away_by_migration_0012(app) -> tuple[int, int]:
    """Before addresses were matched in any case, one person could be two rows; migration
    0012 unsubscribed the second under a placeholder address but kept its name, ledger
    (IPs, user agents) and outbox rows. Returns (merged row, kept row)."""
    from sqlalchemy import update

    from mailer.store.tables import subscribers

    old = subscribe(app, "Anna@Example.org", "Anna de Vries", PREFS, ctx(app)).mail
    confirm(app, old.subscriber_id, ctx(app))
    with app.engine.begin() as conn:
        conn.execute(outbox.insert().values(
            issue_id=_issue(conn), subscriber_id=old.subscriber_id, email="Anna@Example.org",
            segment_key=PREFS.key(), status="sent", attempts=1, message_id="<m@x>",
            possible_duplicate=False, created_at=app.clock.now(), updated_at=app.clock.now()))
        conn.execute(update(subscribers).where(subscribers.c.id == old.subscriber_id).values(
            email=f"merged-{old.subscriber_id}@merged.invalid", status="unsubscribed"))
        subs.record_consent(conn, old.subscriber_id, "Anna@Example.org", "merged",
                            app.clock.now(), "migration:0012", details={"into": 99})
    kept = subscribe(app, "anna@example.org", "Anna", PREFS, ctx(app)).mail.subscriber_id
    return old.subscriber_id, kept


def test_access_shows_a_row_merged_away_by_migration_0012(app):
    """A GDPR access request shows all data held: the merged row's name, preferences,
    dates and mailings too, not only its ledger entries."""
    import json

    from tests.test_cli import invoke

    merged_id, _ = merged_away_by_migration_0012(app)
    with app.engine.connect() as conn:
        held = privacy.data_held(conn, "ANNA@example.org")
    assert held["subscriber"]["name"] == "Anna"
    [merged] = held["merged_records"]
    assert merged["merged_by"] == "migration:0012"
    assert merged["record"]["name"] == "Anna de Vries"
    assert merged["record"]["email"] == f"merged-{merged_id}@merged.invalid"
    assert merged["record"]["confirmed_at"] and merged["record"]["sections"] == ["magazine"]
    assert [m["status"] for m in merged["mailings"]] == ["sent"]
    env = {"MAILER_DATABASE_URL": app.settings.database_url, "MAILER_SECRET_KEY": "k" * 32}
    shown = invoke(["subscribers", "show", "anna@example.org", "--json"], env)
    assert json.loads(shown.output)["merged_records"] == held["merged_records"]
    human = invoke(["subscribers", "show", "anna@example.org"], env).output
    assert "Anna de Vries" in human and "migration:0012" in human
    assert forget(app, "anna@example.org", "admin:test") is True
    with app.engine.connect() as conn:  # erased: nothing personal left to show
        assert privacy.data_held(conn, "anna@example.org")["merged_records"] == []


def test_forget_also_erases_a_row_merged_away_by_migration_0012(app):
    """Erasing the person must reach the row migration 0012 merged away too."""
    merged_id, kept = merged_away_by_migration_0012(app)
    assert forget(app, "anna@example.org", "admin:test") is True
    with app.engine.connect() as conn:
        merged = subs.subscriber_row(conn, merged_id)
        addresses = conn.execute(select(outbox.c.email)).scalars().all()
    assert merged.status == "erased" and merged.name == ""
    assert addresses == [privacy.erased_address(merged_id)]
    for sid in (merged_id, kept):
        assert all(e.ip is None and e.user_agent is None for e in ledger(app, sid))


def _issue(conn, number=1):
    from datetime import date, datetime

    from mailer.store.tables import issues
    now = datetime(2026, 12, 3, 8, tzinfo=UTC)
    return conn.execute(issues.insert().values(
        list_id="l", period=f"2026-W{48 + number}", number=number,
        issue_date=date(2026, 12, 3), moment=now,
        subject="s", preheader="p", status="sent", created_at=now)).inserted_primary_key[0]


def test_purge_pending_erases_only_stale_pending(app):
    old = subscribe(app, "old@example.org", "", PREFS, ctx(app)).mail.subscriber_id
    kept = subscribe(app, "kept@example.org", "", PREFS, ctx(app)).mail.subscriber_id
    confirm(app, kept, ctx(app))
    later = app.with_clock(FixedClock(app.clock.now() + timedelta(days=31)))
    fresh = subscribe(later, "fresh@example.org", "", PREFS, ctx(app)).mail.subscriber_id
    assert purge_pending(later) == 1
    with later.engine.connect() as conn:
        assert subs.subscriber_by_id(conn, old).status is SubscriberStatus.ERASED
        assert subs.subscriber_by_id(conn, kept).status is SubscriberStatus.ACTIVE
        assert subs.subscriber_by_id(conn, fresh).status is SubscriberStatus.PENDING
        assert not subs.is_suppressed(conn, "old@example.org")  # never consented: no record


def test_purge_pending_deletes_the_confirmation_mails_the_file_provider_wrote(app):
    stale = subscribe(app, "Old@example.org", "Olga", PREFS, ctx(app)).mail
    app.subscriber_mail.send(stale)
    later = app.with_clock(FixedClock(app.clock.now() + timedelta(days=31)))
    fresh = subscribe(later, "fresh@example.org", "", PREFS, ctx(app)).mail
    later.subscriber_mail.send(fresh)
    folder = app.settings.path(app.settings.outbox_dir)
    assert len(list(folder.glob("issue-0/*.eml"))) == 2
    assert purge_pending(later) == 1
    left = [p.read_text() for p in folder.glob("issue-0/*.eml")]
    assert len(left) == 1 and "fresh@example.org" in left[0]
    assert not any("old@example.org" in text.lower() for text in left)


def test_import_merges_reports_and_refuses_suppressed(app, tmp_path):
    forget(app, "erased@example.org", "admin:test")
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,sections,themes,audience\n"
        "x@example.org,Xandra,magazine,onderwijs,\n"
        "not-an-address,Bad,,,\n"
        "X@EXAMPLE.org,,agenda,,jeugdhulp\n"
        "y@example.org,Yusuf,krant,,\n"
        "erased@example.org,Eve,,,\n"
        "z@example.org,Zoë,,,nergens\n", encoding="utf-8")
    rows, rejected = parse_csv(path, set(app.settings.themes))
    assert [(r.line, r.reason.split()[0]) for r in rejected] == [
        (3, "An"), (5, "unknown"), (7, "unknown")]
    with app.engine.begin() as conn:
        report = import_rows(conn, rows, confirmed=False, context=ctx(app), note=None,
                             now=app.clock.now(), mail_for=lambda c, s: mail_job(app, c,
                                                                                "confirm", s))
    assert (report.added, report.merged, report.existing) == (1, 1, 0)
    assert [r.line for r in report.refused] == [6]
    assert len(report.mails) == 1
    with app.engine.connect() as conn:
        x = subs.find_by_email(conn, "x@example.org")
    assert x.status is SubscriberStatus.PENDING and x.name == "Xandra"
    assert x.preferences == Preferences(frozenset({"magazine", "agenda"}),
                                        frozenset({"onderwijs", "jeugdhulp"}))
    app.subscriber_mail.send(report.mails[0])
    assert "/bevestigen/" in link_in(mails_in(app.settings.outbox_dir)[0], "bevestigen")


def test_confirmed_import_records_the_note(app):
    rows = [CsvRow(2, "n@example.org", "N", Preferences())]
    with app.engine.begin() as conn:
        report = import_rows(conn, rows, confirmed=True, context=ctx(app),
                             note="paper form, event 2026-10-01", now=app.clock.now())
    assert report.added == 1 and not report.mails
    with app.engine.connect() as conn:
        data = privacy.data_held(conn, "n@example.org")
    assert data["subscriber"]["status"] == "active"
    assert data["consent_history"][0]["details"] == {"note": "paper form, event 2026-10-01"}


def test_the_newsletter_follows_preferences_and_renders_once_per_set(loaded_app):
    from mailer.compose import issue_moment
    from mailer.sending import send_issue, store_issue
    from mailer.store.tables import issue_renders

    themes = {**loaded_app.settings.themes, "sport": "Sport en bewegen"}
    app = loaded_app.with_settings(themes=themes)
    wanted = {"onderwijs@example.org": Preferences(frozenset({"magazine"}),
                                                   frozenset({"onderwijs"})),
              "sport@example.org": Preferences(frozenset({"magazine"}), frozenset({"sport"}))}
    for address, prefs in wanted.items():
        confirm(app, subscribe(app, address, "", prefs, ctx(app)).mail.subscriber_id, ctx(app))
    issue = store_issue(app, issue_moment(app.settings, app.clock, None))
    send_issue(app, issue)
    with app.engine.connect() as conn:
        rows = {r.email: r for r in conn.execute(select(outbox))}
        renders = conn.execute(select(issue_renders.c.segment_key)).scalars().all()
        keys = set(conn.execute(select(outbox.c.segment_key)).scalars())
    assert rows["sport@example.org"].status == "skipped"  # nothing in this issue for them
    assert rows["onderwijs@example.org"].status == "sent"
    assert sorted(renders) == sorted(keys)  # one rendering per distinct preference set
    assert len(rows) > len(keys)
    app.engine.dispose()


def _active(app, email):
    with app.engine.begin() as conn:
        return subs.add_subscriber(conn, email=email, name="", preferences=PREFS,
                                   status=SubscriberStatus.ACTIVE, source="test",
                                   now=app.clock.now())


def _stored(app, sid):
    """The subscriber's row and ledger entries as the driver returns them (on SQLite the
    timestamps as stored text), without what differs per person."""
    with app.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT status, updated_at, unsubscribed_at, token_version FROM subscribers "
            f"WHERE id = {int(sid)}").one()
        events = conn.exec_driver_sql(
            "SELECT event, occurred_at, source, consent_text_version, ip, user_agent, details "
            f"FROM consent_events WHERE subscriber_id = {int(sid)} ORDER BY id").all()
    return tuple(row), [tuple(e) for e in events]


def _unsubscribe_through_sqlalchemy(app, sid, context):
    """The reference: the one-click write done with SQLAlchemy statements and types."""
    from sqlalchemy import update

    from mailer.store.tables import subscribers

    now = app.clock.now()
    with app.engine.begin() as conn:
        conn.execute(update(subscribers).where(subscribers.c.id == sid).values(
            status="unsubscribed", updated_at=now, unsubscribed_at=now))
        subs.log_event(conn, subs.subscriber_row(conn, sid), "unsubscribe", now, context)


def test_link_unsubscribe_writes_what_sqlalchemy_writes(app):
    from mailer.links import TokenClaims
    from mailer.subscriptions import LinkState, unsubscribe_by_link

    by_link, reference = _active(app, "link@example.org"), _active(app, "ref@example.org")
    context = consent_context(app.settings, "web:one-click", "192.0.2.77", UA)
    result = unsubscribe_by_link(app, TokenClaims(by_link.id, 1), context, goodbye=False)
    assert (result.state, result.mail) == (LinkState.UNSUBSCRIBED, None)
    _unsubscribe_through_sqlalchemy(app, reference.id, context)
    assert _stored(app, by_link.id) == _stored(app, reference.id)
    with app.engine.connect() as conn:
        row = subs.subscriber_row(conn, by_link.id)
    assert row.status == "unsubscribed" and row.unsubscribed_at == app.clock.now()
    event = ledger(app, by_link.id)[-1]
    assert (event.event, event.source, event.ip, event.details) == (
        "unsubscribe", "web:one-click", "192.0.2.0", {})  # the truncated IP policy
    assert event.email_hash == subs.email_hash("link@example.org")


def test_link_unsubscribe_tells_repeats_revoked_and_unknown_apart(app):
    from mailer.links import TokenClaims
    from mailer.subscriptions import LinkState, unsubscribe_by_link

    sub, bounced = _active(app, "anna@example.org"), _active(app, "bounce@example.org")
    with app.engine.begin() as conn:
        subs.set_status(conn, bounced.id, SubscriberStatus.BOUNCED, app.clock.now(), "test")
    context = ctx(app)

    def state(sid, version, goodbye=False):
        return unsubscribe_by_link(app, TokenClaims(sid, version), context, goodbye=goodbye)

    assert state(sub.id, 2).state is LinkState.REVOKED  # and nothing changed:
    assert _stored(app, sub.id)[0][0] == "active"
    assert state(sub.id + 999, 1).state is LinkState.UNKNOWN
    assert state(bounced.id, 1).state is LinkState.ALREADY
    done = state(sub.id, 1, goodbye=True)
    assert done.state is LinkState.UNSUBSCRIBED and done.mail.kind == "goodbye"
    again = state(sub.id, 1, goodbye=True)
    assert (again.state, again.mail) == (LinkState.ALREADY, None)  # one goodbye only
    assert [e.event for e in ledger(app, sub.id)] == ["subscribe_confirmed", "unsubscribe"]
    forget(app, "anna@example.org", "admin:test")
    assert state(sub.id, 1).state is LinkState.REVOKED  # erased


def test_ip_truncation_matches_the_network_address():
    import ipaddress

    for ip in ("192.0.2.77", "10.255.255.255", "0.0.0.1", "2001:db8:abcd:12:1:2:3:4",
               "::ffff:192.0.2.7", "fe80::1", "::"):
        prefix = 24 if ipaddress.ip_address(ip).version == 4 else 48
        network = ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
        assert truncate_ip(ip) == str(network.network_address)


def test_driver_transaction_rolls_back_and_leaves_the_connection_as_it_was(app, monkeypatch):
    from mailer.store import db

    sub = _active(app, "anna@example.org")
    sql = db.driver_sql(app.engine.dialect.name,
                        "UPDATE subscribers SET name = :name WHERE id = :sid")
    with pytest.raises(RuntimeError), db.driver_transaction(app.engine) as cursor:
        cursor.execute(sql, {"name": "Mallory", "sid": sub.id})
        raise RuntimeError("halfway")
    monkeypatch.setattr(db.random, "randrange", lambda n: 0)  # this one checkpoints
    with db.driver_transaction(app.engine) as cursor:
        cursor.execute(sql, {"name": "Anna", "sid": sub.id})
    with app.engine.connect() as conn:
        assert subs.subscriber_row(conn, sub.id).name == "Anna"
    if app.engine.dialect.name == "sqlite":  # the pooled connection checkpoints as usual
        raw = app.engine.raw_connection()
        assert raw.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        raw.close()


def test_the_wal_stays_bounded_while_writers_keep_coming(sqlite_url, monkeypatch):
    # Checkpoints run inside the write turn: one run while the next writer already
    # appends can never catch up with the end of the WAL, so SQLite never starts it over
    # and it grows by every transaction (hundreds of MB in a one-click benchmark).
    import threading

    from sqlalchemy import text

    from mailer.store import db

    engine = db.make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE clicks (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(text("INSERT INTO clicks VALUES (1, 0)"))
    monkeypatch.setattr(db, "CHECKPOINT_ONE_IN", 10)
    pad = "x" * 3000  # about a page per transaction

    def click(count: int) -> None:
        for _ in range(count):
            with db.driver_transaction(engine) as cursor:
                cursor.execute(db.driver_sql("sqlite", "UPDATE clicks SET n = n + 1"), {})
                cursor.execute(db.driver_sql(
                    "sqlite", "INSERT INTO clicks (n) VALUES (length(:pad))"), {"pad": pad})

    threads = [threading.Thread(target=click, args=(300,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM clicks WHERE id = 1")).scalar() == 1200
    wal = Path(engine.url.database + "-wal").stat().st_size
    # A checkpoint comes every 10th transaction on average; 400 pages allows a gap of
    # about 200 (chance ~1e-9), while the unbounded WAL reached over 2,000 pages.
    assert wal < 400 * 4096, f"WAL grew to {wal} bytes over 1,200 transactions"
    engine.dispose()


# -- one subscriber per address, whatever its letter case --------------------------------

def test_an_address_in_another_case_is_the_same_subscriber(app):
    first = subscribe(app, "Anna.de.Boer@Voorbeeld.nl", "Anna", PREFS, ctx(app))
    confirm(app, first.mail.subscriber_id, ctx(app))
    again = subscribe(app, "anna.de.boer@voorbeeld.nl", "Anna", PREFS, ctx(app))
    assert again.outcome is SubscribeOutcome.ALREADY_ACTIVE
    assert again.mail.subscriber_id == first.mail.subscriber_id
    rows = [CsvRow(2, "ANNA.DE.BOER@voorbeeld.nl", "A", PREFS)]
    with app.engine.begin() as conn:
        report = import_rows(conn, rows, confirmed=True, context=ctx(app), note="form",
                             now=app.clock.now())
        found = subs.find_by_email(conn, "anna.DE.boer@voorbeeld.nl")
        held = privacy.data_held(conn, "ANNA.de.boer@voorbeeld.nl")
    assert (report.added, report.existing) == (0, 1)
    assert found.id == first.mail.subscriber_id
    assert found.email == "Anna.de.Boer@Voorbeeld.nl"  # kept as first typed
    assert held["subscriber"]["email"] == "Anna.de.Boer@Voorbeeld.nl"
    assert forget(app, "anna.de.boer@VOORBEELD.NL", "admin:test") is True
    with app.engine.connect() as conn:
        assert subs.subscriber_by_id(conn, found.id).status is SubscriberStatus.ERASED


def test_the_store_refuses_a_second_row_for_an_address_in_another_case(app):
    from sqlalchemy.exc import IntegrityError

    with app.engine.begin() as conn:
        subs.add_subscriber(conn, email="piet@voorbeeld.nl", name="", preferences=PREFS,
                            status=SubscriberStatus.ACTIVE, source="test", now=app.clock.now())
    with pytest.raises(IntegrityError), app.engine.begin() as conn:
        subs.add_subscriber(conn, email="Piet@voorbeeld.nl", name="", preferences=PREFS,
                            status=SubscriberStatus.ACTIVE, source="test", now=app.clock.now())


def test_migration_0012_merges_case_duplicates_into_the_active_one(app):
    """A database from before migration 0012 may hold one address in two cases: the
    active row keeps it, the other is unsubscribed under a placeholder, with a ledger entry."""
    from sqlalchemy import insert, text

    from mailer.store.db import upgrade
    from mailer.store.tables import subscribers

    with app.engine.begin() as conn:  # back to before 0012
        conn.execute(text("DROP INDEX uq_subscribers_email_lower"))
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0012'"))
        now = app.clock.now()
        row = dict(name="", sections=[], themes=[], segment_key="", token_version=1,
                   source="test", created_at=now, updated_at=now)
        ids = [conn.execute(insert(subscribers).values(email=email, status=status, **row))
               .inserted_primary_key[0]
               for email, status in [("Kim@voorbeeld.nl", "pending"),
                                     ("kim@voorbeeld.nl", "active"),
                                     ("KIM@VOORBEELD.NL", "unsubscribed"),
                                     ("lou@voorbeeld.nl", "active")]]
    assert upgrade(app.engine) == ["0012"]
    with app.engine.connect() as conn:
        got = {r.id: r for r in conn.execute(select(subscribers).order_by(subscribers.c.id))}
        merged = conn.execute(select(consent_events).where(
            consent_events.c.event == "merged").order_by(consent_events.c.subscriber_id)).all()
    assert got[ids[1]].email == "kim@voorbeeld.nl" and got[ids[1]].status == "active"
    assert got[ids[3]].email == "lou@voorbeeld.nl" and got[ids[3]].status == "active"
    for i in (ids[0], ids[2]):
        assert got[i].email == f"merged-{i}@merged.invalid"
        assert got[i].status == "unsubscribed" and got[i].token_version == 2
        assert got[i].unsubscribed_at is not None
    assert [(m.subscriber_id, m.details) for m in merged] == [
        (ids[0], {"into": ids[1], "from": "pending"}),
        (ids[2], {"into": ids[1], "from": "unsubscribed"})]
    assert {m.email_hash for m in merged} == {subs.email_hash("kim@voorbeeld.nl")}
    with app.engine.connect() as conn:
        assert subs.find_by_email(conn, "KIM@voorbeeld.nl").id == ids[1]
