"""Forms reached through a link's signed token (confirm, preferences, unsubscribe) work
without cookies, and a post that does not come from the link's own page changes nothing."""

from __future__ import annotations

import pytest

from mailer.models import Preferences, SubscriberStatus
from mailer.store import subscribers as subs
from mailer.web import create_app
from tests.test_web import path_of, status_of, subscribed
from tests.webhelpers import form_key_for, form_key_of, link_in


@pytest.fixture
def web(mailer):
    return create_app(mailer)


@pytest.fixture
def pending(web, mailer):
    """Anna subscribed through the form (which does use a cookie): her confirm link."""
    return path_of(link_in(subscribed(web.test_client(), web, mailer), "bevestigen"))


def anna(mailer):
    with mailer.engine.connect() as conn:
        return subs.find_by_email(conn, "anna@example.org")


def no_cookie_set(response) -> bool:
    return "Set-Cookie" not in response.headers


def test_confirm_preferences_and_unsubscribe_work_without_any_cookie(web, mailer, pending):
    browser = web.test_client(use_cookies=False)  # e.g. a mail app's in-app browser
    page = browser.get(pending)
    assert page.status_code == 200 and no_cookie_set(page)
    done = browser.post(pending, data={"form_key": form_key_of(page.text)})
    assert done.status_code == 200 and "Gelukt" in done.text and no_cookie_set(done)
    assert status_of(mailer, "anna@example.org") is SubscriberStatus.ACTIVE

    sub = anna(mailer)
    prefs = path_of(mailer.links.preferences_url(sub.id, sub.token_version))
    page = browser.get(prefs)
    assert page.status_code == 200 and no_cookie_set(page)
    saved = browser.post(prefs, data={"form_key": form_key_of(page.text), "actie": "opslaan",
                                      "onderdelen": ["agenda"], "naam": "Anna"})
    assert saved.status_code == 200 and "opgeslagen" in saved.text and no_cookie_set(saved)
    assert anna(mailer).preferences.sections == frozenset({"agenda"})

    unsubscribe = path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version))
    page = browser.get(unsubscribe)
    assert page.status_code == 200 and no_cookie_set(page)
    gone = browser.post(unsubscribe, data={"List-Unsubscribe": "One-Click", "via": "pagina"})
    assert gone.status_code == 200 and no_cookie_set(gone)
    assert anna(mailer).status is SubscriberStatus.UNSUBSCRIBED

    page = browser.get(prefs)  # and back again, still without a cookie
    back = browser.post(prefs, data={"form_key": form_key_of(page.text),
                                     "actie": "weer-aanmelden"})
    assert "Welkom terug" in back.text and anna(mailer).status is SubscriberStatus.ACTIVE


def tampered(path: str) -> str:
    """A link's path with the end of its token changed: no longer a genuine token."""
    return path[:-3] + ("abc" if not path.endswith("abc") else "abd")


def forged_keys(web, purpose: str, path: str, other: str) -> dict[str, dict[str, str]]:
    """Form fields that do not come from the page of this link for this purpose."""
    return {
        "no key": {},
        "empty key": {"form_key": ""},
        "made-up key": {"form_key": "0" * 64},
        "non-ASCII key": {"form_key": "é" * 64},
        "the session's CSRF token": {"csrf_token": "x" * 43},
        "key of another purpose": {"form_key": form_key_for(
            web, "preferences" if purpose == "confirm" else "confirm", path)},
        "key of another link": {"form_key": form_key_for(web, purpose, other)},
    }


def test_a_forged_confirm_changes_nothing(web, mailer, pending):
    browser = web.test_client(use_cookies=False)
    for name, fields in forged_keys(web, "confirm", pending, pending + "x").items():
        refused = browser.post(pending, data=fields)
        assert refused.status_code == 400, name
        assert "Formulier niet herkend" in refused.text, name
    # A wrong token with the key of its page: the token decides, and it is not genuine.
    wrong = tampered(pending)
    refused = browser.post(wrong, data={"form_key": form_key_for(web, "confirm", wrong)})
    assert refused.status_code == 400 and "Deze link klopt niet" in refused.text
    assert status_of(mailer, "anna@example.org") is SubscriberStatus.PENDING


def test_a_forged_preferences_post_changes_nothing(web, mailer, pending):
    browser = web.test_client(use_cookies=False)
    assert browser.post(pending, data={"form_key": form_key_for(web, "confirm", pending)}
                        ).status_code == 200
    sub = anna(mailer)
    prefs = path_of(mailer.links.preferences_url(sub.id, sub.token_version))
    wanted = {"actie": "opslaan", "onderdelen": ["agenda"], "naam": "Mallory"}
    for name, fields in forged_keys(web, "preferences", prefs, pending).items():
        refused = browser.post(prefs, data={**fields, **wanted})
        assert refused.status_code == 400, name
    wrong = tampered(prefs)
    refused = browser.post(wrong, data={"form_key": form_key_for(web, "preferences", wrong),
                                        **wanted})
    assert refused.status_code == 400 and "Deze link klopt niet" in refused.text
    after = anna(mailer)
    assert (after.preferences, after.name) == (Preferences(), sub.name)


def test_a_forged_unsubscribe_changes_nothing(web, mailer, pending):
    browser = web.test_client(use_cookies=False)
    browser.post(pending, data={"form_key": form_key_for(web, "confirm", pending)})
    sub = anna(mailer)
    unsubscribe = path_of(mailer.links.unsubscribe_url(sub.id, sub.token_version))
    for fields in ({}, {"via": "pagina"}, {"List-Unsubscribe": "Nee"}):
        assert browser.post(unsubscribe, data=fields).status_code == 400, fields
    wrong = tampered(unsubscribe)
    assert browser.post(wrong, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert anna(mailer).status is SubscriberStatus.ACTIVE


def test_the_public_subscribe_form_still_needs_its_session_token(web, mailer):
    browser = web.test_client(use_cookies=False)
    page = browser.get("/aanmelden")
    assert "csrf_token" in page.text and "form_key" not in page.text
    refused = browser.post("/aanmelden", data={"email": "x@example.org"})
    assert refused.status_code == 400 and "Formulier verlopen" in refused.text
    assert status_of(mailer, "x@example.org") is None
