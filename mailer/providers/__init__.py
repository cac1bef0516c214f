"""Mail providers behind one protocol; one module per provider, chosen by name.

A provider turns a Batch into per-recipient statuses, in recipient order. Only a failure
of the whole call raises (ProviderError with `retryable`); everything per recipient is data.
No provider name appears outside this package except in settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Protocol

from mailer.models import Batch, DeliveryEvent, Recipient, RecipientStatus


class Provider(Protocol):
    """Sends batches of one issue segment and reads the provider's webhooks."""

    name: ClassVar[str]
    max_batch: ClassVar[int]

    def send_batch(self, batch: Batch) -> list[RecipientStatus]: ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]: ...

    def reconcile(
        self, issue_id: int, recipients: Sequence[Recipient]
    ) -> list[RecipientStatus | None]:
        """For rows left in flight by a crash: what the provider knows (None = can't tell)."""
        ...


_REGISTRY: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make a provider available under its `name`."""
    _REGISTRY[cls.name] = cls
    return cls


def provider_class(name: str) -> type:
    """The class registered for a provider name; KeyError names the known ones."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown provider {name!r}; known: {known}") from None


def provider_names() -> list[str]:
    """Every registered provider name."""
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    from mailer.providers import brevo, file, mailgun, postmark, sendgrid, smtp  # noqa: F401
