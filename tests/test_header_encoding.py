"""Non-ASCII header text goes out as RFC 2047 encoded words of at most 75 characters,
on one unfolded line, and every decoder we have gives back the exact text."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import parseaddr
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import select, update

from mailer.message import sender_parts
from mailer.preview import build_preview
from mailer.sending import send_issue
from mailer.store.tables import subscribers
from tests.delivery_support import HTTP_PROVIDERS, app_for, start_emulator, the_issue
from tests.test_provider_payloads import tricky_batch
from tests.test_smtp import Mailbox, smtp_app

SUBJECT = "Één, twéé, drié: véér, vìjf, zès, zéven, àcht, négen, tién en élf"
FROM_NAME = "Stichting Één – Jeugd en Ouders samen voor een weerbaar Nederland, met élan"
LIST_NAME = "WeerbaarNL – één voor allen"
READER = "Jürgen van Éénmaal-Öztürk"
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=")


def unfolded_header_lines(raw: bytes) -> dict[str, str]:
    """The header fields of a message, checked to be ASCII and unfolded."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert not re.search(r"\r\n[ \t]", head)
    return dict(line.split(": ", 1) for line in head.split("\r\n"))


def assert_short_words(value: str) -> None:
    """Every encoded word in a header value fits RFC 2047's 75 characters."""
    assert value.isascii()
    assert all(len(word) <= 75 for word in ENCODED_WORD.findall(value)), value


def decoded(value: str) -> str:
    """A raw header value as `email.header` decodes it."""
    return str(make_header(decode_header(value)))


def assert_decodes_exactly(raw: bytes, subject: str, reader: str = "") -> None:
    """The message's headers are short encoded words and give back the exact texts."""
    fields = unfolded_header_lines(raw)
    for value in fields.values():
        assert_short_words(value)
    assert len(ENCODED_WORD.findall(fields["Subject"])) > 1  # too long for one word
    assert re.fullmatch(r"<https://[^<>\s]+/afmelden/[^<>\s]+>, <mailto:[^<>\s]+>",
                        fields["List-Unsubscribe"])
    modern, legacy = message_from_bytes(raw, policy=policy.default), message_from_bytes(raw)
    assert modern["Subject"] == decoded(legacy["Subject"]) == subject
    assert modern["From"].addresses[0].display_name == FROM_NAME
    assert sender_parts(legacy["From"]) == (FROM_NAME, "weerbaarnl@platformjep.example.nl")
    assert modern["List-Id"] == decoded(legacy["List-Id"]) == (
        f"{LIST_NAME} <weerbaarnl.platformjep.example.nl>")
    if reader:
        assert modern["To"].addresses[0].display_name == reader
        assert decoded(parseaddr(legacy["To"])[0]) == reader


@pytest.fixture
def accented_app(loaded_app):
    """The sample app with a non-ASCII sender and list name, and one reader with one."""
    with loaded_app.engine.begin() as conn:
        first = conn.execute(select(subscribers.c.id).order_by(subscribers.c.id)).scalar()
        conn.execute(update(subscribers).where(subscribers.c.id == first).values(name=READER))
    return loaded_app.with_settings(from_name=FROM_NAME, list_name=LIST_NAME)


def eml_files(app) -> list[bytes]:
    return [p.read_bytes() for p in sorted(app.settings.path(app.settings.outbox_dir)
                                           .glob("issue-*/*.eml"))]


@pytest.mark.parametrize("transport", ["file", "smtp"])
def test_long_non_ascii_headers_are_short_encoded_words_that_decode_exactly(accented_app,
                                                                              transport):
    if transport == "file":
        app = accented_app
        send_issue(app, replace(the_issue(app), subject=SUBJECT))
        messages = eml_files(app)
    else:
        mailbox = Mailbox()
        with smtp_app(accented_app, mailbox) as (app, _):
            send_issue(app, replace(the_issue(app), subject=SUBJECT))
        messages = [content for _, content, _ in mailbox.messages]
    names = [message_from_bytes(raw, policy=policy.default)["To"].addresses[0].display_name
             for raw in messages]
    assert len(messages) == 12 and READER in names
    for raw, name in zip(messages, names, strict=True):
        assert_decodes_exactly(raw, SUBJECT, name)


def test_the_preview_eml_has_short_encoded_words(accented_app):
    preview = build_preview(accented_app, replace(the_issue(accented_app), subject=SUBJECT))
    assert_decodes_exactly(preview.eml, SUBJECT)


@pytest.mark.parametrize("name", HTTP_PROVIDERS)
def test_http_providers_get_ascii_list_headers_and_a_sender_in_short_words(accented_app, name):
    emulator = start_emulator(name)
    try:
        app = app_for(accented_app, name, emulator)
        result = send_issue(app, replace(the_issue(app), subject=SUBJECT))
        call = app.provider.build_call(tricky_batch(["Anna"]))
    finally:
        emulator.stop()
    assert result.counts["sent"] == 12
    assert len(emulator.messages) == 12  # else the loop below checks nothing
    for message in emulator.messages:
        assert message["subject"] == SUBJECT  # JSON and form fields take text
        assert message["headers"]["List-Id"].isascii()
        assert decoded(message["headers"]["List-Id"]).startswith(f"{LIST_NAME} <")
    body = call.body() or call.data
    if name == "brevo":  # its JSON takes the name as text
        assert json.loads(body)["sender"]["name"] == FROM_NAME
        return
    if name == "sendgrid":  # "from must be ASCII"
        sender = json.loads(body)["from"]["name"]
    elif name == "postmark":
        sender = json.loads(body)[0]["From"]
    else:
        sender = dict(parse_qsl(body if isinstance(body, str) else body.decode()))["from"]
    assert_short_words(sender)
    assert decoded(parseaddr(sender)[0] if "@" in sender else sender) == FROM_NAME


@pytest.mark.parametrize("subject", [
    "Één–twéé–drié–véér–vìjf–zès–zéven–àcht–négen–tién–élf–twààlf",  # one long word
    "Ελληνικά και русский язык: δύο αλφάβητα σε ένα θέμα, 😀 κι ένα emoji",
    "Spaties  dubbel,  één  =?x  en _onder_ =?= ?=",
])
def test_subjects_of_any_shape_decode_exactly(subject):
    from datetime import UTC, datetime

    from mailer.message import build_message, list_headers

    message = build_message(
        sender="x@example.org", reply_to="x@example.org", to_name="", to_email="y@example.org",
        subject=subject, html="<p>x</p>", text="x", message_id="<m@x>",
        date=datetime(2026, 12, 3, tzinfo=UTC),
        headers=list_headers("x.example.org", "X", "https://x/afmelden/t", "a@x"))
    raw = message.as_bytes()
    assert_short_words(unfolded_header_lines(raw)["Subject"])
    modern, legacy = message_from_bytes(raw, policy=policy.default), message_from_bytes(raw)
    assert modern["Subject"] == decoded(legacy["Subject"]) == subject
