"""The fast paths of payload building and claiming give exactly what the general paths give."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select, update

from mailer.clock import FixedClock, parse_instant
from mailer.models import Batch, Recipient
from mailer.providers.http import (
    body_once,
    body_once_json,
    encode_json,
    json_object,
    json_objects,
    json_with_entries,
)
from mailer.providers.postmark import PostmarkProvider
from mailer.render.personalize import marker
from mailer.store import outbox as box
from mailer.store.tables import outbox
from tests.test_outbox import the_issue

NAMES = ["Anna", "Bob & Zoë", 'Chris "CJ" <cj>', "Dörte\u2028Ünal", "Eve\\n\t\x01", "",
         "O'Brien", "日本語 😀"]


def tricky_batch(names: list[str], *, test: bool = False) -> Batch:
    html_body = ('<p>%%greeting%%</p><a href="%%unsubscribe_url%%">af</a> één "quote" \\ '
                 '\u2028 </script> <a href="%%preferences_url%%">v</a>' * 3)
    text_body = "%%greeting%%\n\tTekst met één \"x\" \\ \x07\n%%unsubscribe_url%%\n"
    recipients = tuple(
        Recipient(outbox_id=i + 1, subscriber_id=i + 10, email=f"r{i}@example.org", name=n,
                  message_id=f"<weerbaarnl.1.{i}@x>",
                  values={"greeting": f"Beste {n},", "unsubscribe_url": f"https://x/a/{i}?a=1&b",
                          "preferences_url": f"https://x/v/{i}"},
                  headers={"List-Unsubscribe": f"<https://x/a/{i}>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
        for i, n in enumerate(names))
    return Batch(issue_id=7, segment_key="s=magazine", subject="Nr. 3: één & \"twee\"",
                 html=html_body, text=text_body, recipients=recipients,
                 headers={"List-Id": "WeerbaarNL <nieuws.weerbaar.nl>"},
                 metadata={"issue_id": "7", "batch_key": "k" * 32}, test=test)


def postmark() -> PostmarkProvider:
    clock = FixedClock(parse_instant("2026-12-03T09:00"))
    return PostmarkProvider("http://127.0.0.1:9", "key", "WeerbaarNL <nieuws@x>",
                            "redactie@x", clock, options={"stream": "broadcast"})


def test_postmark_payload_is_byte_for_byte_the_general_encoding():
    provider = postmark()
    for names, test in ((NAMES, False), (NAMES[:1], True), (["Anna", "Bob"], False)):
        batch = tricky_batch(names, test=test)
        general = encode_json([general_postmark_message(provider, batch, r, "k" * 32)
                               for r in batch.recipients])
        assert provider.build_call(batch).body() == general
        assert provider.build_call(batch).body() == general  # bodies from the cache


def general_postmark_message(provider, batch: Batch, r: Recipient, key: str) -> dict:
    """One Postmark message as a dict, as it was built before the pieces fast path."""
    head, tail = provider._envelope(batch, r, key)
    return {**head, "HtmlBody": batch.html_template.fill(r.values),
            "TextBody": batch.text_template.fill(r.values), **tail}


def reference_body_once(batch: Batch, placeholder):
    """body_once as it was before the fast path: the definition of what it must give."""
    html_keys, text_keys = batch.html_template.keys, batch.text_template.keys
    escaped = {k for k in set(html_keys)
               if any(html.escape(r.values[k]) != r.values[k] for r in batch.recipients)}
    html_body = batch.html_template.with_syntax(
        lambda k: placeholder(f"{k}_html" if k in escaped else k))
    text_body = batch.text_template.with_syntax(placeholder)
    plain = sorted(set(text_keys) | (set(html_keys) - escaped))
    values = [{**{k: r.values[k] for k in plain},
               **{f"{k}_html": html.escape(r.values[k]) for k in escaped}}
              for r in batch.recipients]
    return html_body, text_body, values


def test_body_once_gives_what_the_general_form_gives():
    for names in (NAMES, ["Anna", "Bob"], ["Bob & Zoë"], ["Anna"]):
        batch = tricky_batch(names)
        html_body, text_body, values = reference_body_once(batch, marker)
        assert body_once(batch, marker) == (html_body, text_body, values)
        renamed = body_once(batch, marker, name=marker)
        assert renamed[2] == [{marker(k): v for k, v in vals.items()} for vals in values]


def test_body_once_with_one_key():
    batch = tricky_batch(["Anna & Bob", "Carl"])
    single = Batch(issue_id=1, segment_key="s", subject="s", html="<p>%%greeting%%</p>",
                   text="x", recipients=batch.recipients)
    assert body_once(single, marker) == reference_body_once(single, marker)
    nothing = Batch(issue_id=1, segment_key="s", subject="s", html="<p>x</p>", text="y",
                    recipients=batch.recipients)
    assert body_once(nothing, marker) == reference_body_once(nothing, marker)


def test_body_once_json_is_the_encoded_body_once():
    for names in (NAMES, ["Bob & Zoë"], ["Anna"]):
        batch = tricky_batch(names)
        html_body, text_body, values = body_once(batch, marker, name=marker)
        as_json = body_once_json(batch, marker, name=marker)
        assert as_json == (html_body, text_body, [encode_json(v).decode() for v in values])
    nothing = Batch(issue_id=1, segment_key="s", subject="s", html="<p>x</p>", text="y",
                    recipients=tricky_batch(["Anna"]).recipients)
    assert body_once_json(nothing, marker)[2] == ["{}"]


def test_json_objects_are_what_the_encoder_writes():
    odd = ["", "é", '"', "\\", "\x00\x1f\x7f", "\u2028\u2029", "😀", "</script>", "a\nb",
           "100%", "%s", "%%(x)d"]
    assert json_object(dict(zip(odd, reversed(odd), strict=True))) == encode_json(
        dict(zip(odd, reversed(odd), strict=True))).decode()
    assert json_object({}) == "{}"
    rows = [odd, list(reversed(odd))]
    assert json_objects(odd, rows) == [encode_json(dict(zip(odd, row, strict=True))).decode()
                                       for row in rows]
    assert json_with_entries({"a": 1, "list": []}, ['{"b":2}', "{}"]) == encode_json(
        {"a": 1, "list": [{"b": 2}, {}]})


def general_sendgrid_payload(provider, batch: Batch) -> dict:
    """SendGrid's payload as dicts, as it was built before the JSON text fast path."""
    from email.utils import parseaddr

    from mailer.providers.http import batch_key, split_headers, subject_of

    _, _, values = body_once(batch, marker, name=marker)
    shared, personal = split_headers(batch)
    name, address = parseaddr(provider.sender)
    return {
        "from": {"email": address, **({"name": name} if name else {})},
        "reply_to": {"email": provider.reply_to}, "subject": subject_of(batch),
        "content": [{"type": "text/plain", "value": body_once(batch, marker)[1]},
                    {"type": "text/html", "value": body_once(batch, marker)[0]}],
        "headers": shared, "categories": [f"issue-{batch.issue_id}"],
        "custom_args": {"issue_id": str(batch.issue_id), "batch_key": batch_key(batch)},
        "tracking_settings": {"click_tracking": {"enable": False},
                              "open_tracking": {"enable": False}},
        "personalizations": [
            {"to": [{"email": r.email}], "substitutions": vals, "headers": heads,
             "custom_args": {"outbox_id": str(r.outbox_id)}}
            for r, vals, heads in zip(batch.recipients, values, personal, strict=True)],
    }


def general_brevo_payload(provider, batch: Batch) -> dict:
    """Brevo's payload as dicts, as it was built before the JSON text fast path."""
    import json
    from email.utils import parseaddr

    from mailer.providers.brevo import _custom, _param
    from mailer.providers.http import batch_key, split_headers, subject_of

    html_body, text_body, values = body_once(batch, _param)
    shared, personal = split_headers(batch)
    name, address = parseaddr(provider.sender)
    key = batch_key(batch)
    custom = json.dumps({"issue_id": batch.issue_id, "batch_key": key})
    return {
        "sender": {"email": address, **({"name": name} if name else {})},
        "replyTo": {"email": provider.reply_to}, "subject": subject_of(batch),
        "htmlContent": html_body, "textContent": text_body,
        "headers": {**shared, "idempotencyKey": key, "X-Mailin-custom": custom},
        "tags": [f"issue-{batch.issue_id}"],
        "messageVersions": [
            {"to": [{"email": r.email}], "params": vals,
             "headers": {**heads, "X-Mailin-custom": _custom(batch.issue_id, r.outbox_id)}}
            for r, vals, heads in zip(batch.recipients, values, personal, strict=True)],
    }


def test_sendgrid_and_brevo_payloads_are_byte_for_byte_the_general_encoding():
    from mailer.providers.brevo import BrevoProvider
    from mailer.providers.sendgrid import SendGridProvider

    clock = FixedClock(parse_instant("2026-12-03T09:00"))
    for cls, general in ((SendGridProvider, general_sendgrid_payload),
                         (BrevoProvider, general_brevo_payload)):
        provider = cls("http://127.0.0.1:9", "key", "WeerbaarNL <nieuws@x>", "redactie@x",
                       clock)
        for names, test in ((NAMES, False), (NAMES[:1], True), (["Anna", "Bob"], False)):
            batch = tricky_batch(names, test=test)
            assert provider.build_call(batch).body() == encode_json(general(provider, batch))
        for batch in batches_with_odd_headers():
            assert provider.build_call(batch).body() == encode_json(general(provider, batch))


def batches_with_odd_headers() -> list[Batch]:
    """Batches whose recipients' personal headers are not all alike: names in another
    order, one more header, none at all, a Message-ID among them."""
    batch = tricky_batch(["Anna", "Bob", "Chris"])
    first, second, third = batch.recipients
    reordered = replace(second, headers=dict(reversed(second.headers.items())))
    extra = replace(third, headers={**third.headers, "X-Extra": "één"})
    bare = [replace(r, headers={}) for r in batch.recipients]
    own_id = replace(first, headers={**first.headers, "Message-ID": "<own@x>"})
    return [replace(batch, recipients=(first, reordered, third)),
            replace(batch, recipients=(first, second, extra)),
            replace(batch, recipients=tuple(bare)),
            replace(batch, recipients=(own_id, second))]


def test_claimed_rows_are_what_the_store_holds_after_the_claim(loaded_app):
    from mailer.sending import enqueue

    issue = the_issue(loaded_app)
    enqueue(loaded_app, issue)
    now, lease = loaded_app.clock.now(), timedelta(minutes=5)
    with loaded_app.engine.begin() as conn:  # a retried row: attempts carry on
        first = conn.execute(select(func.min(outbox.c.id))).scalar()
        conn.execute(update(outbox).where(outbox.c.id == first).values(attempts=2))
    with loaded_app.engine.begin() as conn:
        claimed = box.claim_batch(conn, issue.id, "w1", 5, now, lease, batch_key="key-1")
    with loaded_app.engine.connect() as conn:
        stored = box.rows_with_subscribers(conn, [r.id for r in claimed])
    # claimed_at only for a take-over (`rows_with_subscribers`): a claim leaves it unset
    assert {r.claimed_at for r in stored} == {now}
    assert len(claimed) == 5 and claimed == [r._replace(claimed_at=None) for r in stored]
    assert [r.id for r in claimed] == sorted(r.id for r in claimed)
    assert claimed[0].id == first and claimed[0].attempts == 3
    assert claimed[0].lease_until == now + lease


def test_brevo_custom_header_is_what_json_gives():
    import json

    from mailer.providers.brevo import _custom

    for issue_id, outbox_id in ((1, 2), (0, -5), (10**12, 7), (3, True)):
        assert _custom(issue_id, outbox_id) == json.dumps(
            {"issue_id": issue_id, "outbox_id": outbox_id})


def test_sessions_take_proxies_and_ca_bundle_from_the_environment_as_requests_would(
        monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    clock = FixedClock(parse_instant("2026-12-03T09:00"))
    proxied = PostmarkProvider("https://api.example.org", "key", "a@x", "b@x", clock)
    session = proxied.session()
    assert session.proxies["https"] == "http://proxy.invalid:3128"
    assert session.verify == "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setenv("NO_PROXY", "api.example.org")
    direct = PostmarkProvider("https://api.example.org", "key", "a@x", "b@x", clock)
    assert "https" not in direct.session().proxies


def test_form_bodies_are_what_requests_would_send():
    import requests

    from mailer.providers.http import form_encode

    every_byte = "".join(map(chr, range(1, 256)))
    fields = [("from", "WeerbaarNL <nieuws@x>"), ("h:List-Id", "a b+c&d=e%f"),
              ("recipient-variables", '{"r@x":{"greeting":"Beste Zoë, 日本 😀 ~_.-"}}'),
              ("to", "r@example.org"), ("text", every_byte), ("leeg", ""), (every_byte, "k")]
    expected = requests.Request("POST", "http://x/", data=fields).prepare().body
    assert form_encode(fields) == expected.encode()


def test_mailgun_sends_the_form_requests_would_have_built():
    import requests

    from mailer.providers.mailgun import MailgunProvider

    clock = FixedClock(parse_instant("2026-12-03T09:00"))
    provider = MailgunProvider("http://127.0.0.1:9", "key", "WeerbaarNL <nieuws@x>",
                               "redactie@x", clock, options={"domain": "mg.x"})
    call = provider.build_call(tricky_batch(NAMES))
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    pairs = [tuple(p.split("=", 1)) for p in call.data.decode().split("&")]
    from urllib.parse import unquote_plus

    fields = [(unquote_plus(k), unquote_plus(v)) for k, v in pairs]
    assert fields[0] == ("from", "WeerbaarNL <nieuws@x>")
    expected = requests.Request("POST", "http://x/", data=fields).prepare().body
    assert call.data == expected.encode()


def test_brevo_parts_of_a_batch_have_their_own_stable_idempotency_keys():
    """Halves of a batch too large for one call each get a key of their own, and the same
    keys when the same rows are split again (a resend after a crash)."""
    from mailer.providers.brevo import _halves
    from mailer.providers.http import batch_key

    batch = tricky_batch(NAMES)
    first, second = _halves(batch)
    again = _halves(tricky_batch(NAMES))
    keys = [batch_key(first), batch_key(second)]
    assert first.recipients + second.recipients == batch.recipients
    assert keys == [batch_key(p) for p in again]
    assert len({*keys, batch_key(batch)}) == 3


def test_a_non_ascii_sender_name_is_text_for_brevo_and_ascii_for_sendgrid():
    """The sender is kept as a header value (formataddr: an RFC 2047 encoded word for a
    non-ASCII name). Brevo's JSON takes the name as text; SendGrid's `from` must be ASCII."""
    import json
    from email.utils import formataddr

    from mailer.providers.brevo import BrevoProvider
    from mailer.providers.sendgrid import SendGridProvider

    clock = FixedClock(parse_instant("2026-12-03T09:00"))
    sender = formataddr(("Stichting Één – Jeugd", "nieuws@x.example"))
    batch = tricky_batch(["Anna"])
    brevo = BrevoProvider("http://127.0.0.1:9", "key", sender, "redactie@x", clock)
    sendgrid = SendGridProvider("http://127.0.0.1:9", "key", sender, "redactie@x", clock)
    assert json.loads(brevo.build_call(batch).body())["sender"] == {
        "email": "nieuws@x.example", "name": "Stichting Één – Jeugd"}
    sent_from = json.loads(sendgrid.build_call(batch).body())["from"]
    assert sent_from["email"] == "nieuws@x.example" and sent_from["name"].isascii()
    assert sent_from["name"].startswith("=?utf-8?")
