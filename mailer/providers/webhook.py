"""What every provider's webhook code shares: the request, the secrets, checks.

Each provider module verifies and parses its own webhooks (`verify_webhook`,
`webhook_events` classmethods); mailer.web.webhooks applies the resulting events.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_AGE_SECONDS = 15 * 60  # a signed webhook older than this is refused as a replay
KINDS_THAT_MATTER = {"bounce", "complaint", "unsubscribe"}


@dataclass(frozen=True)
class WebhookSecrets:
    """Webhook credentials, from the environment only."""

    secret: str | None = None  # Mailgun signing key; Postmark/Brevo shared secret
    sendgrid_key: str | None = None  # SendGrid verification key (base64 DER public key)


@dataclass(frozen=True)
class WebhookRequest:
    """A received webhook: raw body bytes (signatures cover bytes), headers, arrival time."""

    headers: Mapping[str, str]
    body: bytes
    now: float  # unix seconds

    def header(self, name: str) -> str:
        """A header value, case-insensitively; empty when absent."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), "")

    def basic_password(self) -> str | None:
        """The password of HTTP Basic credentials, if any."""
        value = self.header("Authorization")
        if not value.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(value[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]

    def bearer(self) -> str | None:
        """A bearer token, if any."""
        value = self.header("Authorization")
        return value[7:].strip() if value.lower().startswith("bearer ") else None


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two secrets; never equal when either is missing."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def fresh(timestamp: float, now: float) -> bool:
    """Whether a signed timestamp is recent (in either direction, for clock skew)."""
    return abs(now - timestamp) <= MAX_AGE_SECONDS


def at(seconds: float | int | str | None) -> datetime:
    """A UTC datetime from unix seconds (now-ish default when missing)."""
    try:
        return datetime.fromtimestamp(float(seconds), UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return datetime.now(UTC)
