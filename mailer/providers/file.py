"""The `file` provider: one RFC 5322 .eml file per recipient in a folder. The default.

Useful for the demo and for inspection; also the model of an exact provider: a file
either exists or not, so rows left in flight by a crash reconcile without duplicates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from mailer.clock import Clock
from mailer.models import Batch, DeliveryEvent, DeliveryOutcome, Recipient, RecipientStatus
from mailer.providers import register
from mailer.providers.mime import mime_for


@register
class FileProvider:
    """Writes each message to `<folder>/<issue>/<outbox id>.eml`, atomically."""

    name: ClassVar[str] = "file"
    max_batch: ClassVar[int] = 500

    def __init__(self, folder: Path, sender: str, reply_to: str, clock: Clock):
        self.folder = folder
        self.sender = sender
        self.reply_to = reply_to
        self.clock = clock

    def path_for(self, issue_id: int, recipient: Recipient) -> Path:
        """Where a recipient's message lands."""
        safe = re.sub(r"[^a-z0-9.@_-]", "_", recipient.email.lower())
        return self.folder / f"issue-{issue_id}" / f"{recipient.outbox_id:08d}-{safe}.eml"

    def send_batch(self, batch: Batch) -> list[RecipientStatus]:
        """Write one .eml per recipient; a bad header fails only that recipient."""
        now = self.clock.now()
        return [self._write(batch, r, now) for r in batch.recipients]

    def _write(self, batch: Batch, recipient: Recipient, now: datetime) -> RecipientStatus:
        try:
            message = mime_for(batch, recipient, self.sender, self.reply_to, now)
        except ValueError as exc:
            return RecipientStatus(DeliveryOutcome.INVALID, detail=str(exc))
        path = self.path_for(batch.issue_id, recipient)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_bytes(message.as_bytes())
        os.replace(temp, path)  # atomic: a crash leaves no half-written message
        return RecipientStatus(DeliveryOutcome.SENT, provider_id=str(path))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[DeliveryEvent]:
        """Files have no webhooks."""
        return []

    def reconcile(self, issue_id: int, recipients: Sequence[Recipient]
                  ) -> list[RecipientStatus | None]:
        """A message whose file exists was sent; one without was not (and is safe to send)."""
        return [self._reconcile_one(issue_id, r) for r in recipients]

    def _reconcile_one(self, issue_id: int, recipient: Recipient) -> RecipientStatus:
        path = self.path_for(issue_id, recipient)
        if path.exists():
            return RecipientStatus(DeliveryOutcome.SENT, provider_id=str(path))
        return RecipientStatus(DeliveryOutcome.FAILED, detail="not written before the crash")
