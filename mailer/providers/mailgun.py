"""Mailgun Messages API: up to 1000 `to` values with recipient-variables, body once.

Mailgun rejects the whole call when one address is invalid and does not say which; the
batch is then halved until the bad addresses stand alone. The Events API is read after a
crash: an `accepted` event carrying our outbox id proves the row was sent. Events are
eventually consistent, so a row without one is resent as a possible duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import requests

from mailer.errors import ConfigError, ProviderError
from mailer.models import Batch, DeliveryEvent, DeliveryOutcome, Recipient, RecipientStatus
from mailer.providers import register
from mailer.providers.http import (
    Call,
    HttpProvider,
    batch_key,
    body_once,
    form_encode,
    split_headers,
    subject_of,
)
from mailer.providers.webhook import WebhookRequest, WebhookSecrets, at, fresh, same


def _var(key: str) -> str:
    return f"%recipient.{key}%"


@register
class MailgunProvider(HttpProvider):
    """Batch sending with recipient-variables on one sending domain."""

    name: ClassVar[str] = "mailgun"
    max_batch: ClassVar[int] = 1000
    max_payload_bytes: ClassVar[int] = 25 * 1024 * 1024
    max_message_bytes: ClassVar[int] = 25 * 1024 * 1024
    default_url: ClassVar[str] = "https://api.mailgun.net"

    @classmethod
    def options_from(cls, settings: Any) -> dict[str, str]:
        if not settings.provider_domain:
            raise ConfigError("setting provider_domain (MAILER_PROVIDER_DOMAIN): mailgun needs "
                              "the sending domain, e.g. mg.example.nl")
        return {"domain": settings.provider_domain}

    def auth(self) -> Any:
        return ("api", self.key)

    @property
    def domain(self) -> str:
        return self.options["domain"]

    def build_call(self, batch: Batch) -> Call:
        html, text, values = body_once(batch, _var)
        shared, personal = split_headers(batch)
        key = batch_key(batch)
        variables = {
            r.email: {**vals, **{f"h:{k}": v for k, v in heads.items()},
                      "v:outbox_id": str(r.outbox_id)}
            for r, vals, heads in zip(batch.recipients, values, personal, strict=True)
        }
        fields: list[tuple[str, str]] = [
            ("from", self.sender), ("subject", subject_of(batch)), ("text", text),
            ("html", html), ("h:Reply-To", self.reply_to), ("o:tag", f"issue-{batch.issue_id}"),
            ("o:tracking", "no"), ("v:issue_id", str(batch.issue_id)), ("v:batch_key", key),
            ("v:outbox_id", _var("v:outbox_id")),
        ]
        fields += [(f"h:{k}", v) for k, v in shared.items()]
        fields += [(f"h:{k}", _var(f"h:{k}")) for k in personal[0]]
        fields += [("to", r.email) for r in batch.recipients]
        fields.append(("recipient-variables", json.dumps(variables, separators=(",", ":"))))
        return Call("POST", f"/v3/{self.domain}/messages", data=form_encode(fields),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        """Send; on an invalid-address rejection, halve the batch to isolate the culprits."""
        if not batch.recipients:
            return []
        try:
            return super().send_batch(batch)
        except ProviderError as exc:
            if exc.status != 400 or "valid address" not in str(exc):
                raise
            if len(batch.recipients) == 1:
                return [RecipientStatus(DeliveryOutcome.INVALID, detail=str(exc))]
        half = len(batch.recipients) // 2
        from dataclasses import replace

        parts = (batch.recipients[:half], batch.recipients[half:])
        return [s for part in parts for s in self.send_batch(replace(batch, recipients=part))]

    def parse_response(self, batch: Batch, response: requests.Response) -> list[RecipientStatus]:
        try:
            message_id = response.json().get("id")
        except ValueError:
            message_id = None
        if not message_id:  # e.g. "Mailgun Magnificent API" from a wrong path: not a send
            raise ProviderError(f"mailgun: answer without a message id: {response.text[:200]}",
                                retryable=False)
        status = RecipientStatus(DeliveryOutcome.QUEUED, provider_id=message_id)
        return [status] * len(batch.recipients)  # one immutable answer for all

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]:
        """Events of a (verified) webhook."""
        return webhook_events(WebhookRequest(headers, body, 0.0))

    def reconcile(self, issue_id: int, recipients: Sequence[Recipient]
                  ) -> list[RecipientStatus | None]:
        """An `accepted` event with the row's outbox id means sent; otherwise unknown."""
        return [self._look_up(r) for r in recipients]

    def _look_up(self, recipient: Recipient) -> RecipientStatus | None:
        params = {"event": "accepted", "recipient": recipient.email, "limit": 300}
        try:
            items = self.perform(Call("GET", f"/v3/{self.domain}/events", params=params)
                                 ).json().get("items", [])
        except (ProviderError, ValueError):
            return None
        for item in items:
            variables = item.get("user-variables") or {}
            if str(variables.get("outbox_id")) == str(recipient.outbox_id):
                headers = (item.get("message") or {}).get("headers") or {}
                return RecipientStatus(DeliveryOutcome.SENT, provider_id=headers.get("message-id"))
        return None


def verify_webhook(request: WebhookRequest, secrets: WebhookSecrets) -> str | None:
    """HMAC-SHA256(signing key, timestamp + token) with a fresh timestamp; None when valid."""
    try:
        signature = json.loads(request.body)["signature"]
        timestamp, token, given = signature["timestamp"], signature["token"], signature["signature"]
    except (ValueError, KeyError, TypeError, RecursionError):  # nested past the parser's limit
        return "no Mailgun signature in the body"
    if not secrets.secret:
        return "no webhook secret configured (MAILER_WEBHOOK_SECRET)"
    expected = hmac.new(secrets.secret.encode(), f"{timestamp}{token}".encode(),
                        hashlib.sha256).hexdigest()
    if not same(expected, str(given)):
        return "bad signature"
    if not fresh(float(timestamp), request.now):
        return "stale timestamp"
    return None


def webhook_events(request: WebhookRequest) -> list[DeliveryEvent]:
    """The event of a Mailgun JSON webhook; its signature token is the replay key."""
    data = json.loads(request.body)
    event = data.get("event-data") or {}
    name, severity = event.get("event"), event.get("severity")
    kind = {"complained": "complaint", "unsubscribed": "unsubscribe"}.get(name, name)
    if name == "failed":
        kind = "bounce" if severity == "permanent" else "soft_bounce"
    outbox_id = (event.get("user-variables") or {}).get("outbox_id")
    status = event.get("delivery-status") or {}
    return [DeliveryEvent(
        provider="mailgun", event_id=str(data["signature"]["token"]), kind=str(kind),
        email=str(event.get("recipient", "")), permanent=severity == "permanent"
        or name in ("complained", "unsubscribed"),
        occurred_at=at(event.get("timestamp")),
        outbox_id=int(outbox_id) if str(outbox_id or "").isdigit() else None,
        detail=str(status.get("description") or status.get("message") or event.get("reason")
                   or ""),
    )]
