"""Postmark: `/email/batch` on a Broadcast message stream, parsed per message.

A 200 answer may hold per-message errors (ErrorCode 300 invalid, 406 inactive) and an
"inactive addresses" note inside ErrorCode 0; each becomes that recipient's status.
Postmark has no idempotency key, but its outbound search filters on our metadata, so
rows a crash left in flight are looked up by outbox id: found means sent; not found
means unknown (resent as a possible duplicate), since nothing says the search is
complete the moment a message is accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import requests

from mailer.errors import ProviderError
from mailer.models import Batch, DeliveryEvent, DeliveryOutcome, Recipient, RecipientStatus
from mailer.providers import register
from mailer.providers.http import (
    Call,
    HttpProvider,
    JsonTemplate,
    batch_key,
    encode_json,
    subject_of,
)
from mailer.providers.webhook import WebhookRequest, WebhookSecrets, at, same

INACTIVE_OK = re.compile(r"will not deliver to these inactive addresses: (.+?)\.\s")
INACTIVE_ALL = re.compile(r"Found inactive addresses: (.+?)\.\s")


def _addresses(text: str) -> set[str]:
    return {a.strip().lower() for a in text.split(",") if a.strip()}


@register
class PostmarkProvider(HttpProvider):
    """Postmark's batch API: every message complete, up to 500 per call."""

    name: ClassVar[str] = "postmark"
    max_batch: ClassVar[int] = 500
    max_payload_bytes: ClassVar[int] = 50 * 1024 * 1024
    max_message_bytes: ClassVar[int] = 10 * 1024 * 1024
    body_once: ClassVar[bool] = False
    default_url: ClassVar[str] = "https://api.postmarkapp.com"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._bodies: dict[tuple[str, str], tuple[JsonTemplate, JsonTemplate]] = {}

    @classmethod
    def options_from(cls, settings: Any) -> dict[str, str]:
        return {"stream": settings.postmark_stream}

    def auth_headers(self) -> dict[str, str]:
        return {"X-Postmark-Server-Token": self.key}

    def build_call(self, batch: Batch) -> Call:
        # Every message carries the whole body: encoding ~70 KB of JSON per recipient was
        # most of the send's cost, so the bodies' literal parts are JSON-escaped once per
        # batch and each message is joined from them (byte for byte encode_json(payload),
        # tests check).
        key = batch_key(batch)
        html, text = self._json_bodies(batch)
        out = [b"["]
        for i, r in enumerate(batch.recipients):
            if i:
                out.append(b",")
            self._write_message(batch, r, key, html, text, out)
        out.append(b"]")
        return Call("POST", "/email/batch", json_bytes=b"".join(out))

    def _json_bodies(self, batch: Batch) -> tuple[JsonTemplate, JsonTemplate]:
        """The batch's bodies as JsonTemplates, escaped once per segment rather than per
        batch (every batch of a drain shares the same body strings, so the look-up is
        cheap); the few latest are kept."""
        found = self._bodies.get((batch.html, batch.text))
        if found is None:
            found = JsonTemplate.of(batch.html_template), JsonTemplate.of(batch.text_template)
            if len(self._bodies) >= 8:
                self._bodies.clear()
            self._bodies[(batch.html, batch.text)] = found
        return found

    def _write_message(self, batch: Batch, r: Recipient, key: str, html: JsonTemplate,
                       text: JsonTemplate, out: list[bytes]) -> None:
        """Append one message's JSON object, in pieces, to `out`: its envelope with the
        bodies filled in between, as encode_json would write it."""
        head, tail = self._envelope(batch, r, key)
        out += (encode_json(head)[:-1], b',"HtmlBody":"')
        html.fill(r.values, out)
        out.append(b'","TextBody":"')
        text.fill(r.values, out)
        out += (b'",', encode_json(tail)[1:])

    def _envelope(self, batch: Batch, r: Recipient, key: str
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A message's fields before and after its bodies."""
        headers = {**batch.headers, **r.headers, "Message-ID": r.message_id}
        head = {"From": self.sender, "To": r.email, "ReplyTo": self.reply_to,
                "Subject": subject_of(batch)}
        tail = {
            "Headers": [{"Name": k, "Value": v} for k, v in headers.items()],
            "Metadata": {"issue_id": str(batch.issue_id), "outbox_id": str(r.outbox_id),
                         "batch_key": key},
            "Tag": f"issue-{batch.issue_id}",
            "MessageStream": self.options.get("stream", "broadcast"),
            "TrackOpens": False, "TrackLinks": "None",
        }
        return head, tail

    def parse_response(self, batch: Batch, response: requests.Response) -> list[RecipientStatus]:
        try:
            answers = response.json()
        except ValueError:
            answers = None
        if not isinstance(answers, list) or len(answers) != len(batch.recipients):
            raise ProviderError(f"postmark: unexpected batch answer: {response.text[:300]}",
                                retryable=True, maybe_accepted=True)
        return [self._status(r, a) for r, a in zip(batch.recipients, answers, strict=True)]

    def _status(self, recipient: Recipient, answer: dict[str, Any]) -> RecipientStatus:
        code = int(answer.get("ErrorCode") or 0)
        message = str(answer.get("Message", ""))
        email = recipient.email.lower()
        if code == 0:
            inactive = INACTIVE_OK.search(message)
            if inactive and email in _addresses(inactive.group(1)):
                return RecipientStatus(DeliveryOutcome.REJECTED, detail=message, bounced=True)
            return RecipientStatus(DeliveryOutcome.SENT, provider_id=answer.get("MessageID"))
        if code == 406:
            return RecipientStatus(DeliveryOutcome.REJECTED, detail=f"406 {message}",
                                   bounced=True)
        if code == 300:
            return RecipientStatus(DeliveryOutcome.INVALID, detail=f"300 {message}")
        return RecipientStatus(DeliveryOutcome.FAILED, detail=f"{code} {message}")

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]:
        """Events of a (verified) webhook."""
        return webhook_events(WebhookRequest(headers, body, 0.0))

    def reconcile(self, issue_id: int, recipients: Sequence[Recipient]
                  ) -> list[RecipientStatus | None]:
        """Look each row up in Postmark's outbound search by its outbox id: found is sent,
        anything else unknown (None)."""
        return [self._look_up(r) for r in recipients]

    def _look_up(self, recipient: Recipient) -> RecipientStatus | None:
        params = {"count": 1, "offset": 0, "recipient": recipient.email,
                  "metadata_outbox_id": str(recipient.outbox_id),
                  "messagestream": self.options.get("stream", "broadcast")}
        try:
            found = self.perform(Call("GET", "/messages/outbound", params=params)).json()
        except (ProviderError, ValueError):
            return None
        messages = found.get("Messages") or []
        if messages:
            return RecipientStatus(DeliveryOutcome.SENT, provider_id=messages[0].get("MessageID"))
        # Not (yet) found is no proof it was never sent: Postmark documents the search, not
        # that it lists a message as soon as it is accepted. Resent as a possible duplicate.
        return None


HARD_BOUNCES = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "DMARCPolicy"}


def verify_webhook(request: WebhookRequest, secrets: WebhookSecrets) -> str | None:
    """Postmark does not sign: HTTP Basic credentials or a secret header must match."""
    if not secrets.secret:
        return "no webhook secret configured (MAILER_WEBHOOK_SECRET)"
    if same(request.basic_password(), secrets.secret) or same(
            request.header("X-Webhook-Secret"), secrets.secret):
        return None
    return "missing or wrong credentials"


def webhook_events(request: WebhookRequest) -> list[DeliveryEvent]:
    """One record per POST, discriminated by RecordType."""
    r = json.loads(request.body)
    record = r.get("RecordType")
    kind, email, when = str(record).lower(), r.get("Email") or r.get("Recipient"), None
    if record == "Bounce":
        hard = r.get("Type") in HARD_BOUNCES or bool(r.get("Inactive"))
        kind, when = ("bounce" if hard else "soft_bounce"), r.get("BouncedAt")
    elif record == "SpamComplaint":
        kind, when = "complaint", r.get("BouncedAt")
    elif record == "SubscriptionChange":
        reason = r.get("SuppressionReason")
        when = r.get("ChangedAt")
        kind = ({"HardBounce": "bounce", "SpamComplaint": "complaint"}.get(reason, "unsubscribe")
                if r.get("SuppressSending") else "resubscribe")
    metadata = r.get("Metadata") or {}
    outbox_id = str(metadata.get("outbox_id") or "")
    event_id = f"{record}:{r.get('ID') or r.get('MessageID')}:{when or ''}"
    return [DeliveryEvent(
        provider="postmark", event_id=event_id, kind=kind, email=str(email or ""),
        permanent=kind in ("bounce", "complaint", "unsubscribe"), occurred_at=_when(when),
        outbox_id=int(outbox_id) if outbox_id.isdigit() else None,
        detail=str(r.get("Description") or r.get("Details") or r.get("SuppressionReason") or ""),
    )]


def _when(text: str | None):
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return at(None)
