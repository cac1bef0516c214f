"""The `file` provider: one RFC 5322 .eml file per recipient in a folder. The default.

Useful for the demo and for inspection; also the model of an exact provider: a file
either exists or not, so rows left in flight by a crash reconcile without duplicates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from email import policy
from email.parser import HeaderParser
from pathlib import Path
from typing import ClassVar

from mailer.clock import Clock
from mailer.models import Batch, DeliveryEvent, DeliveryOutcome, Recipient, RecipientStatus
from mailer.providers import register
from mailer.providers.mime import mime_for


def safe_name(email: str) -> str:
    """An address as it appears in file names: lower-cased, odd characters replaced."""
    return re.sub(r"[^a-z0-9.@_-]", "_", email.lower())


def erase_copies(folder: Path, email: str) -> int:
    """Delete every message written for an address (right to erasure); how many were."""
    return delete_copies(copies_for(folder, [email]))


def copies_for(folder: Path, emails: Iterable[str]) -> list[Path]:
    """Every message written for any of many addresses, in one pass over the folder (a
    glob per address would read the folder once per address).

    File names only narrow the search (two addresses may share a safe name); the To
    header decides, so nobody else's copy goes."""
    wanted = {e.lower() for e in emails}
    names = {safe_name(e) for e in wanted}
    if not wanted or not folder.is_dir():
        return []
    return [p for p in folder.glob("issue-*/*.eml")
            if p.stem.partition("-")[2] in names and _addressed_to(p, wanted)]


def copies_older_than(folder: Path, issue_ids: Iterable[int], before: datetime) -> list[Path]:
    """The messages of the given issues, and mails outside any issue (confirmations,
    goodbyes, notes to the editors: `issue-0`) last written before a moment."""
    if not folder.is_dir():
        return []
    found = [p for i in issue_ids if i > 0 for p in (folder / f"issue-{i}").glob("*.eml")]
    found += [p for p in (folder / "issue-0").glob("*.eml")
              if p.stat().st_mtime < before.timestamp()]
    return found


def delete_copies(paths: Iterable[Path]) -> int:
    """Delete messages (already gone is fine); how many were there."""
    deleted = 0
    for path in paths:
        if path.exists():
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def _addressed_to(path: Path, wanted: set[str]) -> bool:
    with path.open("rb") as handle:
        to = HeaderParser(policy=policy.default).parsestr(
            handle.read().decode("utf-8", "replace"))["To"]
    return any(a.addr_spec.lower() in wanted for a in getattr(to, "addresses", ()))


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
        name = f"{recipient.outbox_id:08d}-{safe_name(recipient.email)}.eml"
        return self.folder / f"issue-{issue_id}" / name

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

    def erase_copies_of(self, emails: Iterable[str]) -> int:
        """Delete every message written for any of some addresses (their subscribers were
        erased), in one pass over the folder; how many were."""
        return delete_copies(copies_for(self.folder, emails))

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
