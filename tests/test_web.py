"""The subscriber web app through Flask's test client, on a real SQLite file."""

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailer.app import App
from mailer.clock import FixedClock, parse_instant
from mailer.models import Preferences, SubscriberStatus
from mailer.providers.file import FileProvider
from mailer.store import subscribers as subs
from mailer.store.tables import consent_events, subscribers
from mailer.subscriptions import forget
from mailer.web import create_app
from tests.conftest import DEMO_NOW, make_settings
from tests.webhelpers import (
    form_key_for,
    form_key_of,
    guard_of,
    link_in,
    mails_in,
    text_of,
)

SENT = "/aanmelden/verstuurd"  # where the subscribe form's answer sends the browser
HEADERS = {"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy",
           "X-Content-Type-Options"}


@pytest.fixture
def web(mailer):
    return create_app(mailer)


@pytest.fixture
def client(web):
    return web.test_client()


def join(web):
    web.extensions["weerbaarnl.mail"].join()


def post_form(client, data, path="/aanmelden", **kw):
    page = client.get(path)
    response = client.post(path, data={**guard_of(page.text), **data}, **kw)
    response.close()  # as a WSGI server does after sending: starts the after-answer work
    return response


def status_of(app, email):
    with app.engine.connect() as conn:
        sub = subs.find_by_email(conn, email)
    return sub.status if sub else None


def subscribed(client, web, mailer, email="anna@example.org", **fields):
    """Subscribe through the form and return the confirmation mail."""
    response = post_form(client, {"email": email, **fields})
    assert (response.status_code, response.location) == (303, SENT)
    join(web)
    return [m for m in mails_in(mailer.settings.outbox_dir) if email in m["To"]][-1]


def path_of(url):
    return re.sub(r"^https?://[^/]+", "", url)


def active(client, web, mailer, email="anna@example.org"):
    confirm = path_of(link_in(subscribed(client, web, mailer, email), "bevestigen"))
    assert post_form(client, {}, confirm).status_code == 200
    with mailer.engine.connect() as conn:
        sub = subs.find_by_email(conn, email)
    assert sub.status is SubscriberStatus.ACTIVE
    return sub


@pytest.mark.parametrize("path", ["/aanmelden", "/healthz", "/archief", "/nergens",
                                  "/afmelden/kapot", "/afmelden", "/static/site.css"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    assert set(response.headers.keys()) >= HEADERS
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]  # none at all
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_wrong_method_gets_a_dutch_405_with_allow(client):
    response = client.put("/aanmelden")
    assert response.status_code == 405 and "Dat kan zo niet" in response.text
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}  # RFC 9110 15.5.6
    assert "GET" in client.delete("/healthz").headers["Allow"]


def test_pages_are_dutch_and_labelled(client):
    page = client.get("/aanmelden").text
    assert '<html lang="nl">' in page and 'href="#inhoud"' in page
    for field in ("email", "naam", "onderdeel-magazine", "thema-onderwijs"):
        assert f'<label for="{field}"' in page and f'id="{field}"' in page
    assert "checked" not in page  # no pre-ticked boxes (AVG)


def test_double_opt_in_through_the_web(client, web, mailer):
    mail = subscribed(client, web, mailer, naam="Anna de Boer", themas=["onderwijs"],
                      onderdelen=["magazine"])
    assert mail["Subject"] == "Bevestig je aanmelding voor WeerbaarNL"
    assert "Beste Anna," in text_of(mail)
    confirm = path_of(link_in(mail, "bevestigen"))
    page = client.get(confirm)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and "Ja, ik wil" in page.text
    assert status_of(mailer, "anna@example.org") is SubscriberStatus.PENDING
    done = client.post(confirm, data={"form_key": form_key_of(page.text)})
    assert done.status_code == 200 and "Gelukt" in done.text
    assert status_of(mailer, "anna@example.org") is SubscriberStatus.ACTIVE
    again = client.get(confirm)
    assert "al bevestigd" in again.text
    with mailer.engine.connect() as conn:
        events = conn.execute(select(consent_events.c.event, consent_events.c.source,
                                     consent_events.c.ip)).all()
    # The ledger proves the double opt-in: asked, confirmation mail accepted, confirmed.
    assert [e.event for e in events] == ["subscribe", "confirmation_sent", "confirm"]
    assert events[0].source == "web:http://localhost/aanmelden"
    assert events[0].ip == "127.0.0.0"  # truncated by default


def test_missing_or_wrong_csrf_changes_nothing(client, web, mailer):
    client.get("/aanmelden")
    refused = client.post("/aanmelden", data={"email": "x@example.org"})
    assert refused.status_code == 400 and "Formulier verlopen" in refused.text
    forged = client.post("/aanmelden", data={"email": "x@example.org", "csrf_token": "fake"})
    assert forged.status_code == 400
    assert status_of(mailer, "x@example.org") is None
    odd = client.post("/aanmelden", data={"email": "x@example.org", "csrf_token": "é"})
    assert odd.status_code == 400 and "Formulier verlopen" in odd.text  # not a crash
    sub = active(client, web, mailer)
    prefs = path_of(mailer.links.preferences_url(sub.id, sub.token_version))
    fresh = mailer.engine  # a different browser: no session cookie, no token
    other = web.test_client()
    assert other.post(prefs, data={"onderdelen": "agenda"}).status_code == 400
    with fresh.connect() as conn:
        assert subs.find_by_email(conn, "anna@example.org").preferences == Preferences()


def test_subscribe_answers_the_same_for_every_address(client, web, mailer):
    active(client, web, mailer, "known@example.org")
    post_form(client, {"email": "pending@example.org"})
    forget(mailer, "erased@example.org", "admin:test")
    with mailer.engine.begin() as conn:
        sid = subs.add_subscriber(conn, email="bounced@example.org", name="",
                                  preferences=Preferences(), status=SubscriberStatus.ACTIVE,
                                  source="t", now=mailer.clock.now()).id
        subs.set_status(conn, sid, SubscriberStatus.BOUNCED, mailer.clock.now(), "webhook:t")
    answers = {email: post_form(client, {"email": email}) for email in (
        "new@example.org", "known@example.org", "pending@example.org", "erased@example.org",
        "bounced@example.org")}
    bodies = {(r.status_code, r.location, r.text) for r in answers.values()}
    assert len(bodies) == 1 and next(iter(bodies))[:2] == (303, SENT)
    join(web)
    to = [m["To"] for m in mails_in(mailer.settings.outbox_dir)]
    assert not any("erased@" in t or "bounced@" in t for t in to)
    kinds = {m["To"]: m["Subject"] for m in mails_in(mailer.settings.outbox_dir)}
    assert kinds["known@example.org"] == "Je bent al aangemeld voor WeerbaarNL"


class GatedProvider(FileProvider):
    """The file provider that waits for a gate: a provider that is slow to answer."""

    gate = threading.Event()

    def send_batch(self, batch):
        assert self.gate.wait(30)
        return super().send_batch(batch)


def test_mail_goes_out_after_the_answer(mailer):
    s = mailer.settings
    mailer.provider = GatedProvider(s.path(s.outbox_dir), mailer.sender, s.reply_to,
                                    mailer.clock)
    web = create_app(mailer)
    response = post_form(web.test_client(), {"email": "slow@example.org"})
    assert response.status_code == 303  # answered while the provider still blocks
    assert mails_in(s.outbox_dir) == []
    GatedProvider.gate.set()
    join(web)
    assert len(mails_in(s.outbox_dir)) == 1


def test_header_injection_through_the_name(client, web, mailer):
    mail = subscribed(client, web, mailer, "eve@example.org",
                      naam="Eve\r\nBcc: victim@example.org\r\nSubject: gewonnen")
    assert mail["Bcc"] is None and len(mail.get_all("Subject")) == 1
    assert mail["Subject"] == "Bevestig je aanmelding voor WeerbaarNL"
    assert [a.addr_spec for a in mail["To"].addresses] == ["eve@example.org"]
    with mailer.engine.connect() as conn:
        name = subs.find_by_email(conn, "eve@example.org").name
    assert "\n" not in name and "\r" not in name


def test_invalid_address_is_an_error_tied_to_the_field(client, mailer):
    response = post_form(client, {"email": "niet-geldig@", "naam": "N"})
    assert response.status_code == 400
    assert 'aria-invalid="true" aria-describedby="email-fout"' in response.text
    assert 'id="email-fout"' in response.text and 'href="#email"' in response.text
    assert status_of(mailer, "niet-geldig@") is None


def test_address_we_cannot_mail_is_an_error(client, web, mailer):
    """A non-ASCII local part needs SMTPUTF8, which the mail we build cannot carry: the
    confirmation mail would never come."""
    response = post_form(client, {"email": "jörg@example.org", "naam": "Jörg"})
    assert response.status_code == 400 and 'id="email-fout"' in response.text
    assert "accenten" in response.text
    join(web)
    assert status_of(mailer, "jörg@example.org") is None
    assert post_form(client, {"email": "anna@exämple.org", "naam": "Anna"}).status_code == 303
    join(web)
    [idn] = mails_in(mailer.settings.outbox_dir)  # a non-ASCII domain is fine (IDNA)
    assert [a.addr_spec for a in idn["To"].addresses] == ["anna@xn--exmple-cua.org"]


def test_honeypot_answers_as_usual_but_does_nothing(client, web, mailer):
    response = post_form(client, {"email": "bot@example.org", "website": "http://spam"})
    assert (response.status_code, response.location) == (303, SENT)
    assert "Kijk in je mailbox" in client.get(SENT).text
    join(web)
    assert status_of(mailer, "bot@example.org") is None and not mails_in(
        mailer.settings.outbox_dir)


def test_rate_limits_per_ip_and_per_address(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url, confirm_limit_per_ip=4,
                             confirm_limit_per_address=2)
    app = App(settings, FixedClock(parse_instant(DEMO_NOW)))
    web = create_app(app)
    client = web.test_client()
    answers = [post_form(client, {"email": "same@example.org"}).status_code for _ in range(3)]
    assert answers == [303, 303, 303]  # the address limit is silent (no enumeration)
    join(web)
    assert len(mails_in(settings.outbox_dir)) == 2
    assert post_form(client, {"email": "other@example.org"}).status_code == 303
    blocked = post_form(client, {"email": "third@example.org"})
    assert blocked.status_code == 429 and "Even wachten" in blocked.text
    assert "over een uur opnieuw" in blocked.text  # the window: 60 minutes
    assert status_of(app, "third@example.org") is None
    other_ip = post_form(client, {"email": "third@example.org"},
                         environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert other_ip.status_code == 303
    app.engine.dispose()


@pytest.mark.parametrize("minutes, wait", [(15, "over 15 minuten"), (120, "over 2 uur")])
def test_rate_limit_page_names_the_configured_window(tmp_path, sqlite_url, minutes, wait):
    settings = make_settings(tmp_path, sqlite_url, confirm_limit_per_ip=1,
                             rate_limit_window_minutes=minutes)
    app = App(settings, FixedClock(parse_instant(DEMO_NOW)))
    client = create_app(app).test_client()
    assert post_form(client, {"email": "one@example.org"}).status_code == 303
    blocked = post_form(client, {"email": "two@example.org"})
    assert blocked.status_code == 429 and f"Probeer het {wait} opnieuw." in blocked.text
    assert blocked.headers["Retry-After"] == str(minutes * 60)
    app.engine.dispose()


def test_ipv6_clients_are_limited_per_64_network(tmp_path, sqlite_url):
    """An IPv6 client owns at least a /64 and can pick any source address in it."""
    settings = make_settings(tmp_path, sqlite_url, confirm_limit_per_ip=2)
    app = App(settings, FixedClock(parse_instant(DEMO_NOW)))
    client = create_app(app).test_client()
    answers = [post_form(client, {"email": f"v6-{n}@example.org"},
                         environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{n:x}"}).status_code
               for n in range(1, 4)]
    assert answers == [303, 303, 429]
    other = post_form(client, {"email": "v6-4@example.org"},
                      environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"})
    assert other.status_code == 303  # the next /64 is someone else
    app.engine.dispose()


def test_tampered_forged_expired_and_revoked_tokens(client, web, mailer):
    mail = subscribed(client, web, mailer)
    confirm = path_of(link_in(mail, "bevestigen"))
    token = confirm.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    with mailer.engine.connect() as conn:
        sub_id = subs.find_by_email(conn, "anna@example.org").id
    forged = mailer.links.__class__("another-secret-key-of-32-chars!!", "http://x")
    cases = {
        f"/bevestigen/{tampered}": 400,
        f"/bevestigen/{forged.token('confirm', int(sub_id), 1)}": 400,
        f"/afmelden/{token}": 400,  # a confirm token is no unsubscribe token
        "/voorkeuren/1": 400,
    }
    for path, status in cases.items():
        response = client.get(path)
        assert response.status_code == status, path
        assert "Deze link klopt niet" in response.text
        assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code in (400,)
    later = App(mailer.settings, FixedClock(mailer.clock.now() + timedelta(days=8)))
    expired = create_app(later).test_client().get(confirm)
    assert expired.status_code == 410 and "verlopen" in expired.text
    later.engine.dispose()
    assert status_of(mailer, "anna@example.org") is SubscriberStatus.PENDING


def test_an_expired_confirm_link_of_someone_already_active_says_they_are_confirmed(
        client, web, mailer):
    confirm = path_of(link_in(subscribed(client, web, mailer), "bevestigen"))
    assert post_form(client, {}, confirm).status_code == 200
    later = App(mailer.settings, FixedClock(mailer.clock.now() + timedelta(days=30)))
    visitor = create_app(later).test_client()
    page = visitor.get(confirm)
    assert page.status_code == 200 and "Je aanmelding was al bevestigd" in page.text
    assert "verlopen" not in page.text and "Meld je opnieuw aan" not in page.text
    assert "/voorkeuren/" not in page.text  # an old link never yields a new one
    key = form_key_for(web, "confirm", confirm)  # the page had it, before it expired
    posted = visitor.post(confirm, data={"form_key": key})
    assert posted.status_code == 200 and "al bevestigd" in posted.text
    assert "/voorkeuren/" not in posted.text
    with mailer.engine.begin() as conn:  # a revoked link stays dead, expired or not
        subs.revoke_links(conn, subs.find_by_email(conn, "anna@example.org").id,
                          mailer.clock.now(), "admin:test")
    assert visitor.get(confirm).status_code == 410
    later.engine.dispose()


@pytest.mark.parametrize("status", [SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED])
def test_the_confirm_page_of_a_suppressed_address_says_at_once_it_no_longer_works(
        client, web, mailer, status):
    confirm = path_of(link_in(subscribed(client, web, mailer), "bevestigen"))
    with mailer.engine.begin() as conn:
        sub = subs.find_by_email(conn, "anna@example.org")
        subs.set_status(conn, sub.id, status, mailer.clock.now(), "webhook:test")
    page = client.get(confirm)
    assert page.status_code == 410 and "Aanmelden lukt niet met deze link" in page.text
    assert "Ja, ik wil" not in page.text
    assert status_of(mailer, "anna@example.org") is status


def test_revoked_and_erased_links_stop_working(client, web, mailer):
    sub = active(client, web, mailer)
    old = path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version))
    with mailer.engine.begin() as conn:
        subs.revoke_links(conn, sub.id, mailer.clock.now(), "admin:test")
    revoked = client.post(old, data={"List-Unsubscribe": "One-Click"})
    assert revoked.status_code == 410 and "ingetrokken" in revoked.text
    assert status_of(mailer, "anna@example.org") is SubscriberStatus.ACTIVE
    new = path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version + 1))
    forget(mailer, "anna@example.org", "admin:test")
    assert client.get(new).status_code == 410


def test_one_click_unsubscribe_rfc8058(client, web, mailer):
    sub = active(client, web, mailer)
    url = path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version))
    bare = web.test_client()  # a mail provider: no cookies, no CSRF token
    page = bare.get(url)
    assert page.status_code == 200 and status_of(mailer, "anna@example.org") is \
        SubscriberStatus.ACTIVE
    response = bare.post(url, data="List-Unsubscribe=One-Click",
                         content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert "Je bent afgemeld" in response.text
    assert status_of(mailer, "anna@example.org") is SubscriberStatus.UNSUBSCRIBED
    multipart = bare.post(url, data={"List-Unsubscribe": "One-Click"},
                          content_type="multipart/form-data")
    assert multipart.status_code == 200  # idempotent
    join(web)
    goodbyes = [m for m in mails_in(mailer.settings.outbox_dir)
                if m["Subject"] == "Je bent afgemeld voor WeerbaarNL"]
    assert goodbyes == []  # a mail client's one-click gets no further mail
    with mailer.engine.connect() as conn:
        count = conn.execute(select(func.count()).where(
            consent_events.c.event == "unsubscribe")).scalar()
    assert count == 1
    assert bare.post(url, data={"anders": "1"}).status_code == 400


def test_preferences_change_and_way_back(client, web, mailer):
    sub = active(client, web, mailer)
    prefs = path_of(mailer.links.preferences_url(sub.id, sub.token_version))
    saved = post_form(client, {"naam": "Anna", "onderdelen": ["agenda"],
                               "themas": ["jeugdhulp", "onbekend"], "actie": "opslaan"}, prefs)
    assert saved.status_code == 200 and "opgeslagen" in saved.text
    with mailer.engine.connect() as conn:
        row = conn.execute(select(subscribers)).first()
    assert (row.sections, row.themes, row.segment_key) == (
        ["agenda"], ["jeugdhulp"], "s=agenda;t=jeugdhulp")
    empty = post_form(client, {"actie": "opslaan"}, prefs)
    assert empty.status_code == 400 and 'id="onderdelen-fout"' in empty.text
    unsubscribe = path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version))
    goodbye = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click", "via": "pagina"})
    assert prefs in goodbye.text  # the way back
    join(web)
    assert [m["Subject"] for m in mails_in(mailer.settings.outbox_dir)][-1] == \
        "Je bent afgemeld voor WeerbaarNL"  # the page's button: a goodbye with a way back
    back = post_form(client, {"actie": "weer-aanmelden"}, prefs)
    assert "Welkom terug" in back.text
    assert status_of(mailer, "anna@example.org") is SubscriberStatus.ACTIVE


@pytest.mark.parametrize("status", [SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED])
def test_preferences_page_says_a_suppressed_subscriber_gets_nothing(client, web, mailer,
                                                                     status):
    sub = active(client, web, mailer)
    prefs = path_of(mailer.links.preferences_url(sub.id, sub.token_version))
    with mailer.engine.begin() as conn:
        subs.set_status(conn, sub.id, status, mailer.clock.now(), "webhook:test")
    page = client.get(prefs)
    assert page.status_code == 200
    assert "Je ontvangt WeerbaarNL niet" in page.text  # not a form that looks subscribed
    assert mailer.settings.reply_to in page.text.split("<footer")[0]  # whom to ask
    back = post_form(client, {"actie": "weer-aanmelden"}, prefs)  # e.g. an older page
    assert "Welkom terug" not in back.text
    assert status_of(mailer, "anna@example.org") is status


def _row(mailer, email="anna@example.org"):
    with mailer.engine.connect() as conn:
        return conn.execute(select(subscribers).where(subscribers.c.email == email)).one()


def test_the_form_cannot_overwrite_a_known_pending_record(client, web, mailer):
    """A stranger who knows Anna's address submits the form with another name and other
    choices: Anna's record keeps hers, and her own (older) link confirms hers."""
    own = path_of(link_in(subscribed(client, web, mailer, naam="Anna",
                                     onderdelen=["magazine"]), "bevestigen"))
    before = _row(mailer)
    stranger = web.test_client()
    mail = subscribed(stranger, web, mailer, naam="Mallory", onderdelen=["agenda"],
                      themas=["jeugdhulp"])
    assert "Beste Mallory," in text_of(mail)  # the request's own greeting, to Anna's box
    assert _row(mailer) == before
    newer = path_of(link_in(mail, "bevestigen"))
    assert newer != own
    assert post_form(client, {}, own).status_code == 200
    after = _row(mailer)
    assert (after.status, after.name, after.sections) == ("active", "Anna", ["magazine"])
    assert "al bevestigd" in client.get(newer).text  # the stranger's request is gone
    assert _row(mailer).sections == ["magazine"]


def test_an_older_confirm_link_does_not_take_a_newer_request(client, web, mailer):
    sub = active(client, web, mailer)
    unsubscribe = path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version))
    client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    later = App(mailer.settings, FixedClock(mailer.clock.now() + timedelta(hours=2)))
    web2 = create_app(later)
    owner, stranger = web2.test_client(), web2.test_client()
    own = path_of(link_in(subscribed(owner, web2, later, naam="Anna B",
                                     onderdelen=["magazine"]), "bevestigen"))
    theirs = path_of(link_in(subscribed(stranger, web2, later, naam="Mallory",
                                        onderdelen=["agenda"], themas=["jeugdhulp"]),
                             "bevestigen"))
    page = owner.get(own)
    assert page.status_code == 410 and "Deze link is vervangen" in page.text
    assert "Ja, ik wil" not in page.text
    key = form_key_for(web2, "confirm", own)  # the page had it before the newer request
    refused = owner.post(own, data={"form_key": key})
    assert refused.status_code == 410 and "vervangen" in refused.text
    row = _row(mailer)
    assert (row.status, row.name, row.sections) == ("unsubscribed", "", ["agenda",
                                                                         "magazine"])
    newest = owner.get(theirs)  # Anna sees what she would confirm before she does
    assert newest.status_code == 200 and "Agenda" in newest.text
    assert "Jeugdhulp" in newest.text and "Uit het magazine" not in newest.text
    assert "Mallory" not in newest.text
    later.engine.dispose()


def test_the_form_answers_the_same_for_a_record_with_a_waiting_request(client, web, mailer):
    sub = active(client, web, mailer, "left@example.org")
    client.post(path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version)),
                data={"List-Unsubscribe": "One-Click"})
    post_form(client, {"email": "waiting@example.org"})
    answers = {(r.status_code, r.location, r.text) for r in (
        post_form(client, {"email": email, "naam": "X", "onderdelen": ["agenda"]})
        for email in ("left@example.org", "waiting@example.org", "nieuw@example.org"))}
    [answer] = answers  # the same for all three, and the usual answer, not an error
    assert answer[:2] == (303, SENT)


def test_archive_shows_sent_issues_without_personal_links(loaded_app):
    from mailer.compose import issue_moment
    from mailer.sending import send_issue, store_issue

    issue = store_issue(loaded_app, issue_moment(loaded_app.settings, loaded_app.clock, None))
    send_issue(loaded_app, issue)
    client = create_app(loaded_app).test_client()
    index = client.get("/archief")
    assert f"/archief/{issue.period}" in index.text
    page = client.get(f"/archief/{issue.period}")
    assert page.status_code == 200 and "Beste lezer," in page.text
    assert "%%" not in page.text
    assert not re.search(r"/(afmelden|voorkeuren)/[\w.-]{20,}", page.text)
    assert "style-src 'unsafe-inline'" in page.headers["Content-Security-Policy"]
    assert client.get("/archief/2030-W01").status_code == 404
    assert client.get("/archief/..%2Fetc").status_code == 404


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_a_dead_unsubscribe_link_still_tells_how_to_unsubscribe(client, web, mailer):
    sub = active(client, web, mailer)
    old = path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version))
    with mailer.engine.begin() as conn:
        subs.revoke_links(conn, sub.id, mailer.clock.now(), "admin:test")
    mailto = f'href="mailto:{mailer.settings.unsubscribe_mailto}"'
    for path in (old, "/afmelden/kapot", "/voorkeuren/kapot"):
        page = client.get(path)
        assert page.status_code in (400, 410) and mailto in page.text, path
    assert mailto not in client.get("/nergens").text  # only where someone wants out


@pytest.mark.parametrize("kind", ["confirm", "already", "goodbye"])
def test_subscriber_mails_promise_what_the_pages_do(mailer, kind):
    """The link in each mail opens a page with one more button (link scanners must not
    act), so no mail promises "één klik"; every HTML part shows its link to copy, in case
    the button does not work; the words are the pages' own."""
    mail = mailer.subscriber_mail.rendered(kind)
    for part in (mail.html, mail.text):
        assert "één klik" not in part.lower() and "onderwerpen" not in part
    assert "Kopieer dan deze link" in mail.html
    assert mail.html.count("%%action_url%%") == 3  # button, link and its text


def test_mails_and_web_versions_describe_themselves_in_dutch(mailer):
    """MJML marks the body aria-roledescription="email", which a Dutch screen reader reads
    as the Dutch word for enamel."""
    from mailer.render.newsletter import compile_mjml

    html = compile_mjml('<mjml lang="nl"><mj-body><mj-section><mj-column><mj-text>Hallo'
                        '</mj-text></mj-column></mj-section></mj-body></mjml>')
    for part in (html, mailer.subscriber_mail.rendered("goodbye").html):
        assert 'aria-roledescription="e-mail"' in part
        assert 'aria-roledescription="email"' not in part
