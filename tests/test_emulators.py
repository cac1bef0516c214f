"""The SendGrid and Brevo emulators enforce the limits of the provider reference
(the team's provider notes, ../shared/reference/mail-providers.md), served as real HTTP
servers: each check refuses a request just past its limit with the documented status and
shape, and accepts the request at the limit. Then the real providers, with the longest
and oddest names a subscriber can have, stay within those limits."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import requests

from mailer.models import Preferences, SubscriberStatus
from mailer.sending import send_issue
from mailer.store.subscribers import add_subscriber
from tests.delivery_support import add_subscribers, app_for, start_emulator, the_issue
from tests.emulators import BrevoEmulator, SendGridEmulator

NOW = 1_796_288_400.0  # unix seconds: the SendGrid emulator's clock for send_at
HOURS_72 = 72 * 3600
E_ACUTE = "\u00e9"  # two bytes in UTF-8: a size counted in characters would differ


@pytest.fixture(scope="module")
def sendgrid():
    with SendGridEmulator(key="k", now=lambda: NOW, keep_messages=False) as emu:
        yield emu


@pytest.fixture(scope="module")
def brevo():
    with BrevoEmulator(key="k", keep_messages=False) as emu:
        yield emu


def post_sendgrid(emu: SendGridEmulator, payload: dict) -> requests.Response:
    return requests.post(f"{emu.url}/v3/mail/send", json=payload, timeout=30,
                         headers={"Authorization": f"Bearer {emu.key}"})


def post_brevo(emu: BrevoEmulator, payload: dict) -> requests.Response:
    return requests.post(f"{emu.url}/v3/smtp/email", json=payload, timeout=30,
                         headers={"api-key": emu.key})


# -- SendGrid -----------------------------------------------------------------------------

def sendgrid_message() -> dict:
    """A valid mail/send request with one personalization."""
    return {"personalizations": [{"to": [{"email": "anna@example.org", "name": "Anna"}]}],
            "from": {"email": "nieuws@example.org", "name": "WeerbaarNL"},
            "subject": "Nieuwsbrief", "content": [{"type": "text/plain", "value": "Hoi"}]}


def with_change(change: Callable[[dict], object]) -> dict:
    message = copy.deepcopy(sendgrid_message())
    change(message)
    return message


def person(message: dict) -> dict:
    return message["personalizations"][0]


def emails(prefix: str, count: int) -> list[dict]:
    return [{"email": f"{prefix}{n}@example.org"} for n in range(count)]


def substitutions_of(size: int) -> dict:
    """Substitutions of exactly `size` UTF-8 bytes (keys and values), mostly two-byte."""
    key = "%%kk%%" if size % 2 == 0 else "%%k%%"  # 6 or 5 bytes: the rest is even
    return {key: E_ACUTE * ((size - len(key)) // 2)}


def categories(count: int, length: int = 8) -> list[str]:
    return [f"{n:0{length}d}" for n in range(count)]


# Each limit: the change that puts a request at the limit (accepted), the change just past
# it (refused), and the field SendGrid's error names (None: a bare "Bad Request").
SENDGRID_LIMITS = {
    "substitutions <= 10,000 bytes per personalization": (
        lambda m: person(m).update(substitutions=substitutions_of(10_000)),
        lambda m: person(m).update(substitutions=substitutions_of(10_001)),
        "personalizations.0.substitutions"),
    "message and personalization custom_args < 10,000 bytes together": (
        lambda m: (m.update(custom_args={"issue_id": "7"}),
                   person(m).update(custom_args={"outbox_id": "x" * (9_999 - 9 - 9)})),
        lambda m: (m.update(custom_args={"issue_id": "7"}),
                   person(m).update(custom_args={"outbox_id": "x" * (10_000 - 9 - 9)})),
        "personalizations.0.custom_args"),
    "a personalization's custom_args replace the message's of the same key": (
        lambda m: (m.update(custom_args={"k": "x" * 9_000}),
                   person(m).update(custom_args={"k": "y" * 9_998})),
        lambda m: (m.update(custom_args={"k": "x" * 9_000}),
                   person(m).update(custom_args={"k": "y" * 9_999})),
        "personalizations.0.custom_args"),
    "message custom_args < 10,000 bytes": (
        lambda m: m.update(custom_args={"k": E_ACUTE * 4_999}),
        lambda m: m.update(custom_args={"k": E_ACUTE * 4_999 + "x"}),
        "custom_args"),
    "names in to may not contain ','": (
        lambda m: person(m)["to"][0].update(name="Jansen Piet"),
        lambda m: person(m)["to"][0].update(name="Jansen, Piet"),
        "personalizations.0.to.name"),
    "names in cc may not contain ';'": (
        lambda m: person(m).update(cc=[{"email": "b@example.org", "name": "Bob (jr.)"}]),
        lambda m: person(m).update(cc=[{"email": "b@example.org", "name": "Bob; jr."}]),
        "personalizations.0.cc.name"),
    "names in bcc may not contain ','": (
        lambda m: person(m).update(bcc=[{"email": "c@example.org", "name": "Chris"}]),
        lambda m: person(m).update(bcc=[{"email": "c@example.org", "name": "Chris,"}]),
        "personalizations.0.bcc.name"),
    "from is ASCII (the name too; an RFC 2047 encoded word is ASCII)": (
        lambda m: m["from"].update(name="=?utf-8?q?Caf=C3=A9?="),
        lambda m: m["from"].update(name=f"Caf{E_ACUTE}"),
        "from"),
    "a personalization's from is ASCII": (
        lambda m: person(m).update(**{"from": {"email": "redactie@example.org"}}),
        lambda m: person(m).update(**{"from": {"email": f"redacti{E_ACUTE}@example.org"}}),
        "personalizations.0.from"),
    "at most 10 categories": (
        lambda m: m.update(categories=categories(10)),
        lambda m: m.update(categories=categories(11)),
        "categories"),
    "categories are unique": (
        lambda m: m.update(categories=["a", "A"]),
        lambda m: m.update(categories=["a", "a"]),
        "categories"),
    "a category has at most 255 characters": (
        lambda m: m.update(categories=categories(2, 255)),
        lambda m: m.update(categories=categories(2, 256)),
        "categories"),
    "reply_to or reply_to_list, not both": (
        lambda m: m.update(reply_to_list=[{"email": "r@example.org"}]),
        lambda m: m.update(reply_to={"email": "r@example.org"},
                           reply_to_list=[{"email": "r@example.org"}]),
        "reply_to"),
    "message header values are strings": (
        lambda m: m.update(headers={"X-Issue": "7"}),
        lambda m: m.update(headers={"X-Issue": 7}),
        None),
    "message custom_args values are strings": (
        lambda m: m.update(custom_args={"issue_id": "7"}),
        lambda m: m.update(custom_args={"issue_id": 7}),
        None),
    "message headers are not SendGrid's own": (
        lambda m: m.update(headers={"List-Id": "<x.example.org>"}),
        lambda m: m.update(headers={"Reply-To": "r@example.org"}),
        "headers"),
    "at most 1000 recipients across to, cc and bcc": (
        lambda m: person(m).update(cc=emails("cc", 499), bcc=emails("bcc", 500)),
        lambda m: person(m).update(cc=emails("cc", 500), bcc=emails("bcc", 500)),
        "personalizations"),
    "an address once across to, cc and bcc": (
        lambda m: person(m).update(cc=[{"email": "anna2@example.org"}]),
        lambda m: person(m).update(cc=[{"email": "Anna@example.org"}]),
        "personalizations.0.cc"),
    "send_at at most 72 hours ahead": (
        lambda m: m.update(send_at=int(NOW) + HOURS_72),
        lambda m: m.update(send_at=int(NOW) + HOURS_72 + 1),
        "send_at"),
    "a personalization's send_at at most 72 hours ahead": (
        lambda m: person(m).update(send_at=int(NOW) + HOURS_72),
        lambda m: person(m).update(send_at=int(NOW) + HOURS_72 + 1),
        "personalizations.0.send_at"),
    "asm shows at most 25 groups": (
        lambda m: m.update(asm={"group_id": 1, "groups_to_display": list(range(25))}),
        lambda m: m.update(asm={"group_id": 1, "groups_to_display": list(range(26))}),
        "asm.groups_to_display"),
}


@pytest.mark.parametrize("limit", SENDGRID_LIMITS)
def test_sendgrid_accepts_a_request_at_a_limit(sendgrid, limit):
    at_limit, _, _ = SENDGRID_LIMITS[limit]
    before = sendgrid.batches_accepted
    response = post_sendgrid(sendgrid, with_change(at_limit))
    assert response.status_code == 202, response.text
    assert response.headers["X-Message-Id"] and sendgrid.batches_accepted == before + 1


@pytest.mark.parametrize("limit", SENDGRID_LIMITS)
def test_sendgrid_refuses_a_request_past_a_limit_as_documented(sendgrid, limit):
    _, past_limit, field = SENDGRID_LIMITS[limit]
    before = sendgrid.batches_accepted
    response = post_sendgrid(sendgrid, with_change(past_limit))
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == field and error["message"] and "help" in error
    assert field is not None or error["message"] == "Bad Request"
    assert sendgrid.batches_accepted == before


# -- Brevo --------------------------------------------------------------------------------

def brevo_message(versions: int = 1, params: dict | None = None) -> dict:
    """A valid batch request: `versions` message versions, each with `params`."""
    return {"sender": {"email": "nieuws@example.org", "name": "WeerbaarNL"},
            "subject": "Nieuwsbrief", "htmlContent": "<p>{{ params.greeting }}</p>",
            "messageVersions": [{"to": [{"email": f"lezer{n}@example.org"}],
                                 "params": params or {"greeting": "Beste lezer,"}}
                                for n in range(versions)]}


def params_of(size: int) -> dict:
    """Params of exactly `size` UTF-8 bytes (keys and values), mostly two-byte."""
    key = "gg" if size % 2 == 0 else "g"
    return {key: E_ACUTE * ((size - len(key)) // 2)}


def brevo_change(change: Callable[[dict], object]) -> dict:
    message = brevo_message()
    change(message)
    return message


def version(message: dict) -> dict:
    return message["messageVersions"][0]


# Each limit: the request at the limit (accepted), the one just past it (refused), and the
# Brevo error code of the refusal.
BREVO_LIMITS = {
    "params <= 100 KB per message version": (
        lambda: brevo_message(params=params_of(100_000)),
        lambda: brevo_message(params=params_of(100_001)),
        "invalid_parameter"),
    "params <= 1000 KB over all message versions": (
        lambda: brevo_message(10, params_of(100_000)),
        lambda: brevo_message(11, params_of(90_910)),
        "invalid_parameter"),
    "replyTo is a single address": (
        lambda: brevo_change(lambda m: m.update(replyTo={"email": "r@example.org"})),
        lambda: brevo_change(lambda m: m.update(replyTo=[{"email": "r@example.org"}])),
        "invalid_parameter"),
    "a version's replyTo is a single address": (
        lambda: brevo_change(lambda m: version(m).update(replyTo={"email": "r@example.org"})),
        lambda: brevo_change(lambda m: version(m).update(replyTo=[{"email": "r@example.org"}])),
        "invalid_parameter"),
    "sender has an email or an id": (
        lambda: brevo_change(lambda m: m.update(sender={"id": 3})),
        lambda: brevo_change(lambda m: m.update(sender={"name": "WeerbaarNL"})),
        "missing_parameter"),
}


@pytest.mark.parametrize("limit", BREVO_LIMITS)
def test_brevo_accepts_a_request_at_a_limit(brevo, limit):
    at_limit, _, _ = BREVO_LIMITS[limit]
    message = at_limit()
    response = post_brevo(brevo, message)
    assert response.status_code == 201, response.text
    assert len(response.json()["messageIds"]) == len(message["messageVersions"])


@pytest.mark.parametrize("limit", BREVO_LIMITS)
def test_brevo_refuses_a_request_past_a_limit_as_documented(brevo, limit):
    _, past_limit, code = BREVO_LIMITS[limit]
    before = brevo.batches_accepted
    response = post_brevo(brevo, past_limit())
    assert response.status_code == 400
    assert set(response.json()) == {"code", "message"}
    assert response.json()["code"] == code and response.json()["message"]
    assert brevo.batches_accepted == before


def test_the_sizes_are_what_the_limits_name():
    from tests.emulators.base import text_bytes

    assert text_bytes(substitutions_of(10_000)) == 10_000
    assert text_bytes(substitutions_of(10_001)) == 10_001
    assert text_bytes(params_of(100_000)) == 100_000 and text_bytes(params_of(90_910)) == 90_910
    assert text_bytes({"n": 12, "o": {"a": [1]}}) == len("n12o" + '{"a": [1]}')


# -- the real providers stay within the limits --------------------------------------------

# A name is cut to 200 characters when stored (clean_name; the web form refuses longer).
ODD_NAMES = {
    "emoji@example.org": "\U0001f600" * 250,  # the most UTF-8 bytes a stored name can have
    "quotes@example.org": '"' * 250,  # the most bytes once HTML-escaped (&quot;)
    "jansen@example.org": "Jansen, Piet; jr. <&>",  # what SendGrid refuses in a to.name
}


def add_odd_subscribers(app) -> None:
    with app.engine.begin() as conn:
        for email, name in ODD_NAMES.items():
            add_subscriber(conn, email=email, name=name, preferences=Preferences(),
                           status=SubscriberStatus.ACTIVE, source="test", now=app.clock.now())


@pytest.mark.parametrize("provider", ["sendgrid", "brevo"])
def test_the_longest_and_oddest_names_do_not_get_a_batch_refused(loaded_app, provider):
    add_odd_subscribers(loaded_app)
    add_subscribers(loaded_app.engine, 1200, loaded_app.clock.now())  # one full batch and more
    emu = start_emulator(provider)
    try:
        app = app_for(loaded_app, provider, emu)
        result = send_issue(app, the_issue(app))
    finally:
        emu.stop()
    assert not emu.rejected_calls
    assert result.finished and result.counts["sent"] == 12 + len(ODD_NAMES) + 1200
    assert len(emu.received) == result.counts["sent"] and not emu.duplicates()
    by_address = {m["to"]: m for m in emu.messages}
    assert "Beste " + "\U0001f600" * 200 + "," in by_address["emoji@example.org"]["text"]
    assert "Beste " + "&quot;" * 200 + "," in by_address["quotes@example.org"]["html"]
    assert "Beste Jansen,," in by_address["jansen@example.org"]["text"]


def test_a_brevo_batch_of_long_names_is_split_within_the_params_limit(loaded_app):
    """990 subscribers with the longest names a name can be put a batch's params over
    Brevo's 1000 KB: the provider splits the batch (each part its own idempotency key)
    instead of having the whole call refused."""
    with loaded_app.engine.begin() as conn:
        for i in range(990):
            add_subscriber(conn, email=f"long{i}@example.org", name='"' * 200,
                           preferences=Preferences(), status=SubscriberStatus.ACTIVE,
                           source="test", now=loaded_app.clock.now())
    emu = start_emulator("brevo")
    try:
        app = app_for(loaded_app, "brevo", emu)
        result = send_issue(app, the_issue(app))
    finally:
        emu.stop()
    assert not emu.rejected_calls
    assert result.finished and result.counts["sent"] == 12 + 990
    assert len(emu.received) == result.counts["sent"] and not emu.duplicates()
