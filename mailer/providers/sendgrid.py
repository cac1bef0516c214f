"""SendGrid v3 Mail Send: the body once per call, one personalization per recipient.

SendGrid answers 202 with one X-Message-Id for the whole call and reports bad recipients
only later, as `dropped` events (see mailer.web.webhooks). It returns no per-recipient id,
so each personalization carries our outbox id in `custom_args` for correlation.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from email.utils import parseaddr
from typing import Any, ClassVar

import requests

from mailer.errors import ProviderError
from mailer.models import Batch, DeliveryEvent, DeliveryOutcome, Recipient, RecipientStatus
from mailer.providers import register
from mailer.providers.http import (
    Call,
    HttpProvider,
    batch_key,
    body_once_json,
    json_with_entries,
    quoted,
    retry_after_seconds,
    split_header_objects,
    subject_of,
)
from mailer.providers.webhook import WebhookRequest, WebhookSecrets, at, fresh
from mailer.render.personalize import marker


@register
class SendGridProvider(HttpProvider):
    """Up to 1000 personalizations per call, content sent once."""

    name: ClassVar[str] = "sendgrid"
    max_batch: ClassVar[int] = 1000
    max_payload_bytes: ClassVar[int] = 30 * 1000 * 1000
    max_message_bytes: ClassVar[int] = 30 * 1000 * 1000
    default_url: ClassVar[str] = "https://api.sendgrid.com"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def build_call(self, batch: Batch) -> Call:
        html, text, values = body_once_json(batch, marker, name=marker)  # substitution keys
        shared, personal = split_header_objects(batch)
        # "from must be ASCII" (the reference): a non-ASCII name stays the RFC 2047
        # encoded words the sender is kept as, rather than the text Brevo gets.
        name, address = parseaddr(self.sender)
        payload: dict[str, Any] = {
            "from": {"email": address, **({"name": name} if name else {})},
            "reply_to": {"email": self.reply_to},
            "subject": subject_of(batch),
            "content": [{"type": "text/plain", "value": text},
                        {"type": "text/html", "value": html}],
            "headers": shared,
            "categories": [f"issue-{batch.issue_id}"],
            "custom_args": {"issue_id": str(batch.issue_id), "batch_key": batch_key(batch)},
            "tracking_settings": {"click_tracking": {"enable": False},
                                  "open_tracking": {"enable": False}},
            "personalizations": [],  # written as JSON text below
        }
        entries = [_personalization(r, vals, heads)
                   for r, vals, heads in zip(batch.recipients, values, personal, strict=True)]
        return Call("POST", "/v3/mail/send", json_bytes=json_with_entries(payload, entries))

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        """Send; when SendGrid refuses the call only for invalid addresses (it names their
        personalizations), those recipients fail alone and the others are sent."""
        try:
            return super().send_batch(batch)
        except ProviderError as exc:
            bad = _invalid_personalizations(exc)
            if not bad or max(bad) >= len(batch.recipients):
                raise
            refused = RecipientStatus(DeliveryOutcome.INVALID, detail=str(exc))
        others = tuple(r for i, r in enumerate(batch.recipients) if i not in bad)
        sent = iter(self.send_batch(replace(batch, recipients=others)) if others else ())
        return [refused if i in bad else next(sent) for i in range(len(batch.recipients))]

    def parse_response(self, batch: Batch, response: requests.Response) -> list[RecipientStatus]:
        message_id = response.headers.get("X-Message-Id")
        status = RecipientStatus(DeliveryOutcome.QUEUED, provider_id=message_id)
        return [status] * len(batch.recipients)  # one immutable answer for all

    def retry_after(self, response: requests.Response) -> float | None:
        """Retry-After if given, else the X-RateLimit-Reset epoch."""
        explicit = retry_after_seconds(response.headers.get("Retry-After"))
        reset = response.headers.get("X-RateLimit-Reset")
        if explicit is not None or not reset:
            return explicit
        try:
            return max(float(reset) - self.clock_time(), 0.0)
        except ValueError:
            return None

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]:
        """Events of a (verified) webhook."""
        return webhook_events(WebhookRequest(headers, body, 0.0))

    def clock_time(self) -> float:
        """Wall-clock seconds, as the reset header counts them."""
        import time

        return time.time()


INVALID_FIELD = re.compile(r"personalizations\.(\d+)\.(?:to|cc|bcc)\b")


def _invalid_personalizations(exc: ProviderError) -> set[int]:
    """The personalizations a 400 refuses for invalid addresses; empty when it (also)
    refuses anything else."""
    if exc.status != 400:
        return set()
    try:
        errors = json.loads(exc.response_text).get("errors") or []
    except (ValueError, AttributeError):
        return set()
    found = [INVALID_FIELD.match(str(e.get("field") or "")) for e in errors
             if isinstance(e, dict) and "valid address" in str(e.get("message", ""))]
    if not found or len(found) != len(errors) or None in found:
        return set()
    return {int(m.group(1)) for m in found}  # None in found returned above


def _personalization(r: Recipient, substitutions: str, headers: str) -> str:
    """One recipient's personalization as JSON text, exactly what encode_json gives for
    {"to": [{"email": ...}], "substitutions": ..., "headers": ..., "custom_args":
    {"outbox_id": "..."}}; `substitutions` and `headers` are JSON text already."""
    return (f'{{"to":[{{"email":{quoted(r.email)}}}],"substitutions":{substitutions},'
            f'"headers":{headers},"custom_args":{{"outbox_id":{quoted(str(r.outbox_id))}}}}}')


def verify_webhook(request: WebhookRequest, secrets: WebhookSecrets) -> str | None:
    """ECDSA P-256/SHA-256 over timestamp + raw body with the verification key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    signature = request.header("X-Twilio-Email-Event-Webhook-Signature")
    timestamp = request.header("X-Twilio-Email-Event-Webhook-Timestamp")
    if not signature or not timestamp:
        return "no SendGrid signature headers"
    if not secrets.sendgrid_key:
        return "no verification key configured (MAILER_SENDGRID_VERIFICATION_KEY)"
    try:
        key = load_der_public_key(base64.b64decode(secrets.sendgrid_key))
        key.verify(base64.b64decode(signature), timestamp.encode() + request.body,
                   ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr]
    except (InvalidSignature, ValueError, TypeError):
        return "bad signature"
    try:
        if not fresh(float(timestamp), request.now):
            return "stale timestamp"
    except ValueError:
        return "bad timestamp"
    return None


DROPPED_AS = {"bounced address": "bounce", "invalid": "bounce",
              "unsubscribed address": "unsubscribe", "spam reporting address": "complaint"}


def webhook_events(request: WebhookRequest) -> list[DeliveryEvent]:
    """SendGrid posts an array of events; `sg_event_id` is each one's replay key."""
    events = json.loads(request.body)
    return [_event(e) for e in events if isinstance(e, dict)]


def _event(e: dict) -> DeliveryEvent:
    name = str(e.get("event", ""))
    kind = {"spamreport": "complaint", "unsubscribe": "unsubscribe",
            "group_unsubscribe": "unsubscribe"}.get(name, name)
    if name == "bounce":
        kind = "bounce" if e.get("type", "bounce") == "bounce" else "soft_bounce"
    if name == "dropped":
        kind = DROPPED_AS.get(str(e.get("reason", "")).lower(), "dropped")
    outbox_id = str(e.get("outbox_id") or "")
    return DeliveryEvent(
        provider="sendgrid", event_id=str(e.get("sg_event_id") or _digest(e)), kind=kind,
        email=str(e.get("email", "")), permanent=kind in ("bounce", "complaint", "unsubscribe"),
        occurred_at=at(e.get("timestamp")),
        outbox_id=int(outbox_id) if outbox_id.isdigit() else None,
        detail=str(e.get("reason") or e.get("response") or ""),
    )


def _digest(e: dict) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(e, sort_keys=True).encode()).hexdigest()
