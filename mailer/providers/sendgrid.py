"""SendGrid v3 Mail Send: the body once per call, one personalization per recipient.

SendGrid answers 202 with one X-Message-Id for the whole call and reports bad recipients
only later, as `dropped` events (see mailer.web.webhooks). It returns no per-recipient id,
so each personalization carries our outbox id in `custom_args` for correlation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import requests

from mailer.models import Batch, DeliveryOutcome, RecipientStatus
from mailer.providers import register
from mailer.providers.http import (
    Call,
    HttpProvider,
    batch_key,
    body_once,
    retry_after_seconds,
    split_headers,
    subject_of,
)
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
        html, text, values = body_once(batch, marker)
        shared, personal = split_headers(batch)
        from email.utils import parseaddr

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
            "personalizations": [
                {"to": [{"email": r.email}],
                 "substitutions": {marker(k): v for k, v in vals.items()},
                 "headers": heads, "custom_args": {"outbox_id": str(r.outbox_id)}}
                for r, vals, heads in zip(batch.recipients, values, personal, strict=True)
            ],
        }
        return Call("POST", "/v3/mail/send", json=payload)

    def parse_response(self, batch: Batch, response: requests.Response) -> list[RecipientStatus]:
        message_id = response.headers.get("X-Message-Id")
        return [RecipientStatus(DeliveryOutcome.QUEUED, provider_id=message_id)
                for _ in batch.recipients]

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

    def clock_time(self) -> float:
        """Wall-clock seconds, as the reset header counts them."""
        import time

        return time.time()
