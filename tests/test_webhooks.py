"""Provider webhooks: signatures computed by each provider's documented algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from mailer.app import App
from mailer.models import Preferences, SubscriberStatus
from mailer.settings import with_overrides
from mailer.store import subscribers as subs
from mailer.store.tables import consent_events, suppressions
from mailer.web import create_app

SECRET = "webhook-secret-for-tests-0123456789"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(SENDGRID_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


@pytest.fixture
def hooked(app):
    settings = with_overrides(app.settings, webhook_secret=SECRET,
                              sendgrid_verification_key=SENDGRID_PUBLIC)
    mailer = App(settings, app.clock)
    with mailer.engine.begin() as conn:
        for email in ("anna@example.org", "bob@example.org"):
            subs.add_subscriber(conn, email=email, name="", preferences=Preferences(),
                                status=SubscriberStatus.ACTIVE, source="test",
                                now=app.clock.now())
    yield mailer, create_app(mailer).test_client()
    mailer.engine.dispose()


def status(mailer, email):
    with mailer.engine.connect() as conn:
        return subs.find_by_email(conn, email).status


def ledger(mailer):
    with mailer.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(consent_events)).scalar()


def mailgun_body(mailer, event, token="tok-1", key=SECRET, timestamp=None):
    ts = str(int(timestamp or mailer.clock.now().timestamp()))
    sig = hmac.new(key.encode(), f"{ts}{token}".encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": ts, "token": token, "signature": sig},
            "event-data": event}


BOUNCE = {"event": "failed", "severity": "permanent", "recipient": "anna@example.org",
          "reason": "bounce", "timestamp": 1.0,
          "delivery-status": {"code": 550, "description": "No such user"}}


def test_mailgun_bounce_is_applied_once_and_replays_change_nothing(hooked):
    mailer, client = hooked
    body = mailgun_body(mailer, BOUNCE)
    before = ledger(mailer)
    first = client.post("/webhooks/mailgun", json=body)
    assert first.status_code == 200 and first.json["applied"] == 1
    assert status(mailer, "anna@example.org") is SubscriberStatus.BOUNCED
    with mailer.engine.connect() as conn:
        assert subs.is_suppressed(conn, "anna@example.org")
    assert ledger(mailer) == before + 1
    again = client.post("/webhooks/mailgun", json=body)
    assert again.status_code == 200 and again.json["duplicates"] == 1
    assert ledger(mailer) == before + 1


def test_mailgun_forged_stale_or_reused_signatures_change_nothing(hooked):
    mailer, client = hooked
    forged = mailgun_body(mailer, BOUNCE, key="not-the-key")
    assert client.post("/webhooks/mailgun", json=forged).status_code == 403
    stale = mailgun_body(mailer, BOUNCE, timestamp=mailer.clock.now().timestamp() - 3600)
    assert client.post("/webhooks/mailgun", json=stale).status_code == 403
    assert client.post("/webhooks/mailgun", json={"event-data": BOUNCE}).status_code == 401
    delivered = mailgun_body(mailer, {"event": "delivered", "recipient": "bob@example.org"},
                             token="captured")
    assert client.post("/webhooks/mailgun", json=delivered).status_code == 200
    reused = {**delivered, "event-data": {**BOUNCE, "recipient": "bob@example.org"}}
    assert client.post("/webhooks/mailgun", json=reused).json["applied"] == 0
    assert status(mailer, "anna@example.org") is SubscriberStatus.ACTIVE
    assert status(mailer, "bob@example.org") is SubscriberStatus.ACTIVE


def sendgrid_post(client, mailer, events, tamper=False):
    body = json.dumps(events).encode()
    ts = str(int(mailer.clock.now().timestamp()))
    signature = SENDGRID_KEY.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    sent = body.replace(b"bob", b"eve") if tamper else body
    return client.post("/webhooks/sendgrid", data=sent, content_type="application/json",
                       headers={"X-Twilio-Email-Event-Webhook-Signature":
                                base64.b64encode(signature).decode(),
                                "X-Twilio-Email-Event-Webhook-Timestamp": ts})


def test_sendgrid_signed_events_bounce_and_complaint(hooked):
    mailer, client = hooked
    events = [
        {"email": "anna@example.org", "event": "bounce", "type": "bounce",
         "sg_event_id": "e1", "timestamp": 1, "reason": "550 unknown user"},
        {"email": "bob@example.org", "event": "spamreport", "sg_event_id": "e2", "timestamp": 1},
        {"email": "bob@example.org", "event": "delivered", "sg_event_id": "e3", "timestamp": 1},
    ]
    assert sendgrid_post(client, mailer, events, tamper=True).status_code == 403
    assert status(mailer, "bob@example.org") is SubscriberStatus.ACTIVE
    response = sendgrid_post(client, mailer, events)
    assert response.status_code == 200 and response.json["applied"] == 2
    assert status(mailer, "anna@example.org") is SubscriberStatus.BOUNCED
    assert status(mailer, "bob@example.org") is SubscriberStatus.COMPLAINED
    with mailer.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(suppressions)).scalar() == 2
    assert sendgrid_post(client, mailer, events).json["duplicates"] == 2


def test_postmark_needs_the_shared_secret(hooked):
    mailer, client = hooked
    bounce = {"RecordType": "Bounce", "ID": 42, "Type": "HardBounce", "TypeCode": 1,
              "Email": "Anna@Example.org", "BouncedAt": "2026-12-03T10:00:00Z",
              "Description": "The server was unable to deliver your message"}
    wrong = base64.b64encode(b"postmark:wrong").decode()
    assert client.post("/webhooks/postmark", json=bounce).status_code == 401
    assert client.post("/webhooks/postmark", json=bounce,
                       headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    assert status(mailer, "anna@example.org") is SubscriberStatus.ACTIVE
    right = base64.b64encode(f"postmark:{SECRET}".encode()).decode()
    ok = client.post("/webhooks/postmark", json=bounce, headers={"Authorization": f"Basic {right}"})
    assert ok.status_code == 200 and ok.json["applied"] == 1
    assert status(mailer, "anna@example.org") is SubscriberStatus.BOUNCED
    change = {"RecordType": "SubscriptionChange", "MessageID": "m1", "Recipient": "bob@example.org",
              "SuppressSending": True, "SuppressionReason": "ManualSuppression",
              "ChangedAt": "2026-12-03T10:00:00Z"}
    by_header = client.post("/webhooks/postmark", json=change, headers={"X-Webhook-Secret": SECRET})
    assert by_header.json["applied"] == 1
    assert status(mailer, "bob@example.org") is SubscriberStatus.UNSUBSCRIBED


def test_brevo_token_and_a_complaint_outranks_a_later_unsubscribe(hooked):
    mailer, client = hooked
    spam = {"event": "spam", "email": "anna@example.org", "message-id": "<m1>",
            "ts_epoch": 1764756000000}
    assert client.post("/webhooks/brevo", json=spam).status_code == 401
    assert client.post("/webhooks/brevo", json=spam,
                       headers={"Authorization": "Bearer nope"}).status_code == 401
    auth = {"Authorization": f"Bearer {SECRET}"}
    assert client.post("/webhooks/brevo", json=spam, headers=auth).json["applied"] == 1
    unsubscribe = {**spam, "event": "unsubscribe", "ts_epoch": 1764756000001}
    assert client.post("/webhooks/brevo", json=unsubscribe, headers=auth).json["applied"] == 0
    assert status(mailer, "anna@example.org") is SubscriberStatus.COMPLAINED


def test_unknown_provider_and_unconfigured_secret(hooked, app):
    mailer, client = hooked
    assert client.post("/webhooks/nope", json={}).status_code == 404
    bare = create_app(app).test_client()  # no secrets configured: refuse everything
    body = mailgun_body(mailer, BOUNCE)
    assert bare.post("/webhooks/mailgun", json=body).status_code == 401
    assert status(mailer, "anna@example.org") is SubscriberStatus.ACTIVE


@pytest.mark.parametrize("outbox_id", [2**31, 2**63, 10**30])
def test_an_outbox_id_beyond_the_database_integer_is_ignored(hooked, outbox_id):
    """An authenticated event may carry any digits as our outbox id; one that no row can
    have is ignored and the event is matched by address, not a 500."""
    mailer, client = hooked
    auth = {"Authorization": f"Bearer {SECRET}"}
    spam = {"event": "spam", "email": "anna@example.org", "message-id": "<m-big>",
            "ts_epoch": 1764756000000, "X-Mailin-custom": json.dumps({"outbox_id": outbox_id})}
    response = client.post("/webhooks/brevo", json=spam, headers=auth)
    assert response.status_code == 200 and response.json["applied"] == 1
    assert status(mailer, "anna@example.org") is SubscriberStatus.COMPLAINED


def test_deeply_nested_json_is_refused_not_a_500(hooked):
    """JSON nested deeper than the parser's recursion limit, from anyone: Mailgun's
    signature sits in the body, so the body is parsed before anything is verified."""
    mailer, client = hooked
    deep = "[" * 100_000
    refused = client.post("/webhooks/mailgun", data=deep, content_type="application/json")
    assert refused.status_code == 401
    auth = {"X-Webhook-Secret": SECRET}
    unreadable = client.post("/webhooks/postmark", data=deep, headers=auth,
                             content_type="application/json")
    assert unreadable.status_code == 400
    assert status(mailer, "anna@example.org") is SubscriberStatus.ACTIVE
