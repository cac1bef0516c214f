"""Brevo transactional API: global content once, one `messageVersions` entry per recipient.

Every call carries an idempotency key (in the JSON `headers.idempotencyKey`) derived from
the rows it holds. Brevo refuses a repeat within its TTL with `duplicate_parameter`, which
means "already accepted": resending a batch whose answer was lost can never deliver twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import requests

from mailer.errors import ProviderError
from mailer.message import sender_parts
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
from mailer.providers.webhook import WebhookRequest, WebhookSecrets, at, same

ALREADY_ACCEPTED = "duplicate_parameter"
INVALID_ADDRESS = "email is not valid"
# "cumulative params <=1000 KB" over a call's message versions (the API reference). Read
# on the safe side: a KB as 1000 bytes, and the params counted as their JSON text.
MAX_PARAMS_BYTES = 1000 * 1000


class _ParamsTooLarge(Exception):
    """A batch's params are over Brevo's limit for one call: send it in parts."""


def _param(key: str) -> str:
    return f"{{{{ params.{key} }}}}"


def _custom(issue_id: int, outbox_id: int) -> str:
    """json.dumps({"issue_id": ..., "outbox_id": ...}) for two ints, without the encoder
    (called once per recipient)."""
    if type(issue_id) is int and type(outbox_id) is int:
        return f'{{"issue_id": {issue_id}, "outbox_id": {outbox_id}}}'
    return json.dumps({"issue_id": issue_id, "outbox_id": outbox_id})


def _message_version(issue_id: int, r: Recipient, params: str, headers: str) -> str:
    """One recipient's message version as JSON text, exactly what encode_json gives for
    {"to": [{"email": ...}], "params": ..., "headers": {..., "X-Mailin-custom": ...}};
    `params` and `headers` (without X-Mailin-custom) are JSON text already."""
    custom = quoted(_custom(issue_id, r.outbox_id))
    return (f'{{"to":[{{"email":{quoted(r.email)}}}],"params":{params},'
            f'"headers":{headers[:-1]},"X-Mailin-custom":{custom}}}}}')


@register
class BrevoProvider(HttpProvider):
    """Batches of up to 1000 message versions under one idempotency key."""

    name: ClassVar[str] = "brevo"
    max_batch: ClassVar[int] = 1000
    max_payload_bytes: ClassVar[int] = 20 * 1024 * 1024  # [U] not documented; conservative
    max_message_bytes: ClassVar[int] = 10 * 1024 * 1024
    idempotent: ClassVar[bool] = True
    # Brevo keeps a key 30 minutes (an older changelog says 15): trust it for less.
    idempotency_ttl: ClassVar[timedelta] = timedelta(minutes=12)
    default_url: ClassVar[str] = "https://api.brevo.com"

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.key}

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        """Send; a batch whose params are over the limit goes in two halves (typical
        params are ~250 bytes a recipient, so only a batch of very long names needs it).
        Brevo refuses a whole call for one invalid address without saying which: the
        batch is halved until the refused addresses stand alone."""
        try:
            return super().send_batch(batch)
        except _ParamsTooLarge:
            pass
        except ProviderError as exc:
            if exc.status != 400 or INVALID_ADDRESS not in str(exc):
                raise
            if len(batch.recipients) == 1:
                return [RecipientStatus(DeliveryOutcome.INVALID, detail=str(exc))]
        return [s for part in _halves(batch) for s in self.send_batch(part)]

    def build_call(self, batch: Batch) -> Call:
        html, text, values = body_once_json(batch, _param)
        if len(values) > 1 and len(",".join(values).encode()) > MAX_PARAMS_BYTES:
            raise _ParamsTooLarge
        shared, personal = split_header_objects(batch)
        name, address = sender_parts(self.sender)
        key = batch_key(batch)
        custom = json.dumps({"issue_id": batch.issue_id, "batch_key": key})
        payload: dict[str, Any] = {
            "sender": {"email": address, **({"name": name} if name else {})},
            "replyTo": {"email": self.reply_to},
            "subject": subject_of(batch),
            "htmlContent": html, "textContent": text,
            "headers": {**shared, "idempotencyKey": key, "X-Mailin-custom": custom},
            "tags": [f"issue-{batch.issue_id}"],
            "messageVersions": [],  # written as JSON text below
        }
        entries = [_message_version(batch.issue_id, r, vals, heads)
                   for r, vals, heads in zip(batch.recipients, values, personal, strict=True)]
        return Call("POST", "/v3/smtp/email", json_bytes=json_with_entries(payload, entries))

    def is_answer(self, response: requests.Response) -> bool:
        """A duplicate idempotency key is an answer: the batch was accepted before."""
        return response.status_code == 400 and self._code(response) == ALREADY_ACCEPTED

    def _code(self, response: requests.Response) -> str:
        try:
            return str(response.json().get("code", ""))
        except (ValueError, AttributeError):
            return ""

    def parse_response(self, batch: Batch, response: requests.Response) -> list[RecipientStatus]:
        if self.is_answer(response):
            return [RecipientStatus(DeliveryOutcome.SENT, detail="accepted earlier (same "
                                    "idempotency key)") for _ in batch.recipients]
        try:
            ids = response.json().get("messageIds") or []
        except (ValueError, AttributeError):
            ids = []
        if len(ids) != len(batch.recipients):
            raise ProviderError(f"brevo: {len(ids)} message ids for {len(batch.recipients)} "
                                "versions", retryable=True, maybe_accepted=True)
        return [RecipientStatus(DeliveryOutcome.SENT, provider_id=i) for i in ids]

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]:
        """Events of a (verified) webhook."""
        return webhook_events(WebhookRequest(headers, body, 0.0))

    def retry_after(self, response: requests.Response) -> float | None:
        """Retry-After if given, else x-sib-ratelimit-reset (seconds)."""
        return retry_after_seconds(response.headers.get("Retry-After")
                                   or response.headers.get("x-sib-ratelimit-reset"))


def _halves(batch: Batch) -> tuple[Batch, Batch]:
    """The batch in two, each part under its own idempotency key derived from the batch's:
    a resend of the same rows splits the same way and so carries the same keys."""
    half = len(batch.recipients) // 2
    key = batch_key(batch)

    def part(number: int, recipients: tuple[Recipient, ...]) -> Batch:
        part_key = hashlib.sha256(f"{key}:{number}".encode()).hexdigest()[:32]
        return replace(batch, recipients=recipients,
                       metadata={**batch.metadata, "batch_key": part_key})

    return part(0, batch.recipients[:half]), part(1, batch.recipients[half:])


def verify_webhook(request: WebhookRequest, secrets: WebhookSecrets) -> str | None:
    """Brevo does not sign: a bearer token or Basic credentials must match the secret."""
    if not secrets.secret:
        return "no webhook secret configured (MAILER_WEBHOOK_SECRET)"
    if same(request.bearer(), secrets.secret) or same(request.basic_password(), secrets.secret):
        return None
    return "missing or wrong credentials"


KINDS = {"hard_bounce": "bounce", "invalid_email": "bounce", "spam": "complaint",
         "complaint": "complaint", "unsubscribe": "unsubscribe", "soft_bounce": "soft_bounce"}


def webhook_events(request: WebhookRequest) -> list[DeliveryEvent]:
    """One event per POST. Brevo has no event id: the replay key hashes what identifies it."""
    e = json.loads(request.body)
    kind = KINDS.get(str(e.get("event")), str(e.get("event")))
    identity = f"{e.get('event')}|{e.get('email')}|{e.get('message-id')}|{e.get('ts_epoch')}"
    try:
        custom = json.loads(e.get("X-Mailin-custom") or "{}")
    except ValueError:
        custom = {}
    outbox_id = str(custom.get("outbox_id") or "")
    return [DeliveryEvent(
        provider="brevo", event_id=hashlib.sha256(identity.encode()).hexdigest(), kind=kind,
        email=str(e.get("email", "")), permanent=kind in ("bounce", "complaint", "unsubscribe"),
        occurred_at=at((e.get("ts_epoch") or 0) / 1000 or None),
        outbox_id=int(outbox_id) if outbox_id.isdigit() else None,
        detail=str(e.get("reason") or "").strip(),
    )]
