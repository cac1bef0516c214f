"""The one-click layer beneath Flask answers exactly as the Flask view would, and leaves
every other request to Flask."""

import html
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.test import Client
from werkzeug.wrappers import Response

from mailer.app import App
from mailer.clock import FixedClock, parse_instant
from mailer.models import Preferences, SubscriberStatus
from mailer.store import subscribers as subs
from mailer.store.tables import consent_events
from mailer.web import create_app
from tests.conftest import DEMO_NOW, make_settings
from tests.webhelpers import mails_in

UA = "Thunderbird/115.0 (X11; Linux x86_64)"
ONE_CLICK = dict(data="List-Unsubscribe=One-Click",
                 content_type="application/x-www-form-urlencoded",
                 headers={"User-Agent": UA}, environ_base={"REMOTE_ADDR": "192.0.2.77"})


@pytest.fixture
def web(mailer):
    """The web app, counting the requests that reach Flask beneath the layer."""
    web = create_app(mailer)
    layer = web.wsgi_app
    flask_app = layer.inner
    web.reached_flask = []

    def counting(environ, start_response):
        web.reached_flask.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)

    layer.inner = counting
    web.without_layer = flask_app
    return web


def flask_only(web):
    """A client of the Flask app without the layer: the general way."""
    return Client(web.without_layer, Response)


def add_active(mailer, email):
    with mailer.engine.begin() as conn:
        return subs.add_subscriber(
            conn, email=email, name="", preferences=Preferences(frozenset({"agenda"})),
            status=SubscriberStatus.ACTIVE, source="test", now=mailer.clock.now())


def unsubscribe_path(mailer, sub, version=1):
    return "/afmelden/" + mailer.links.token("unsubscribe", sub.id, version)


def page_of(mailer, response, sub):
    """The page without the subscriber's own way back (the only personal part)."""
    url = html.escape(mailer.links.preferences_url(sub.id, 1))
    assert url in response.text
    return response.text.replace(url, "URL")


def stored(mailer, sub):
    with mailer.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT status, updated_at, unsubscribed_at FROM "
                                   f"subscribers WHERE id = {sub.id}").one()
        events = conn.exec_driver_sql(
            "SELECT event, occurred_at, source, consent_text_version, ip, user_agent, details "
            f"FROM consent_events WHERE subscriber_id = {sub.id} ORDER BY id").all()
    return tuple(row), [tuple(e) for e in events]


def test_the_layer_answers_and_writes_as_the_flask_view(web, mailer):
    via_layer, via_flask = add_active(mailer, "laag@example.org"), add_active(mailer,
                                                                             "flask@x.org")
    layer, general = web.test_client(), flask_only(web)
    for _ in ("unsubscribed", "already"):
        answer = layer.post(unsubscribe_path(mailer, via_layer), **ONE_CLICK)
        expected = general.post(unsubscribe_path(mailer, via_flask), **ONE_CLICK)
        assert answer.status_code == expected.status_code == 200
        assert list(answer.headers) == list(expected.headers)
        assert page_of(mailer, answer, via_layer) == page_of(mailer, expected, via_flask)
    assert "Je bent afgemeld" in answer.text  # a repeat too, as the view answers
    assert web.reached_flask == []  # the layer answered both itself
    assert stored(mailer, via_layer) == stored(mailer, via_flask)
    events = stored(mailer, via_layer)[1]
    assert [e[0] for e in events] == ["subscribe_confirmed", "unsubscribe"]
    assert events[1][2] == "web:one-click" and events[1][4] == "192.0.2.0"  # truncated IP
    assert "Set-Cookie" not in answer.headers and answer.headers["Cache-Control"] == "no-store"


def test_everything_else_is_left_to_flask_and_changes_nothing(web, mailer):
    sub = add_active(mailer, "anna@example.org")
    path = unsubscribe_path(mailer, sub)
    client = web.test_client()
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    confirm_token = "/afmelden/" + mailer.links.token("confirm", sub.id, 1)
    cases = [
        (tampered, ONE_CLICK, 400, "Deze link klopt niet"),
        (confirm_token, ONE_CLICK, 400, "Deze link klopt niet"),
        (unsubscribe_path(mailer, sub, version=2), ONE_CLICK, 410, "ingetrokken"),
        (unsubscribe_path(mailer, add_active(mailer, "x@example.org")) + "/x", ONE_CLICK,
         404, "Pagina niet gevonden"),
        (path, {**ONE_CLICK, "data": "anders=1"}, 400, "niet compleet"),
        (path, ONE_CLICK, 200, "Je bent afgemeld"),  # with a cookie, see below
    ]
    for url, request, status, text in cases:
        if status == 200:
            client.set_cookie("weerbaarnl_sessie", "x")  # a browser: the general way
        response = client.post(url, **request)
        assert (response.status_code, text in response.text) == (status, True), url
        if status != 200:
            assert stored(mailer, sub)[0][0] == "active"
    assert len(web.reached_flask) == len(cases)
    later = App(mailer.settings, FixedClock(mailer.clock.now() + timedelta(days=400)))
    assert later.links.read("unsubscribe", path[len("/afmelden/"):]).subscriber_id == sub.id
    later.engine.dispose()


def test_the_page_button_and_multipart_take_the_flask_way(web, mailer):
    button, multipart = add_active(mailer, "knop@example.org"), add_active(mailer,
                                                                          "mp@example.org")
    client = web.test_client()
    page = client.post(unsubscribe_path(mailer, button),
                       data={"List-Unsubscribe": "One-Click", "via": "pagina"})
    assert page.status_code == 200 and len(web.reached_flask) == 1
    web.extensions["weerbaarnl.mail"].join()
    assert [m["Subject"] for m in mails_in(mailer.settings.outbox_dir)] == \
        ["Je bent afgemeld voor WeerbaarNL"]  # the button's goodbye mail
    response = client.post(unsubscribe_path(mailer, multipart),
                           data={"List-Unsubscribe": "One-Click"},
                           content_type="multipart/form-data")
    assert response.status_code == 200 and len(web.reached_flask) == 2


def test_a_failing_layer_leaves_the_answer_to_flask(web, mailer, monkeypatch, caplog):
    import mailer.web.one_click as layer_module

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(layer_module, "unsubscribe_by_link", broken)
    sub = add_active(mailer, "anna@example.org")
    response = web.test_client().post(unsubscribe_path(mailer, sub), **ONE_CLICK)
    assert response.status_code == 200 and "Je bent afgemeld" in response.text
    assert web.reached_flask and "one-click shortcut failed" in caplog.text
    assert stored(mailer, sub)[0][0] == "unsubscribed"


def test_the_layer_sees_the_client_behind_a_trusted_proxy(tmp_path, sqlite_url):
    mailer = App(make_settings(tmp_path, sqlite_url, base_url="https://localhost",
                               trusted_proxies=1), FixedClock(parse_instant(DEMO_NOW)))
    sub = add_active(mailer, "anna@example.org")
    response = create_app(mailer).test_client().post(
        unsubscribe_path(mailer, sub), **{**ONE_CLICK, "headers": {
            "X-Forwarded-For": "198.51.100.23", "X-Forwarded-Proto": "https"}})
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    with mailer.engine.connect() as conn:
        ip = conn.execute(select(consent_events.c.ip).where(
            consent_events.c.event == "unsubscribe")).scalar()
    assert ip == "198.51.100.0"
    mailer.engine.dispose()
