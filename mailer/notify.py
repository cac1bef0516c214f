"""Short notes to the editors (Dutch, plain text + HTML) through the configured provider."""

from __future__ import annotations

import html
import logging
import uuid

from mailer.addresses import normalize_email
from mailer.app import App
from mailer.models import Batch, DeliveryOutcome, Recipient

log = logging.getLogger(__name__)

SIGNATURE = "Dit bericht komt van de planner van de WeerbaarNL-mailer."


def notify_editors(app: App, subject: str, lines: list[str]) -> bool:
    """Mail a short note to `settings.editors`; never raises. Returns whether it went out.

    A note that cannot be delivered must not take the scheduler down with it: the
    failure is logged, which is as loud as we can still be.
    """
    editors = app.settings.editors
    if not editors:
        log.warning("no editors configured; note not mailed: %s", subject)
        return False
    try:
        batch = note_batch(app, subject, lines, editors)
        statuses = app.provider.send_batch(batch)
    except Exception:  # noqa: BLE001 - a broken note must not stop the scheduler
        log.exception("could not mail the editors the note %r", subject)
        return False
    failed = [r.email for r, s in zip(batch.recipients, statuses, strict=True)
              if s.outcome not in (DeliveryOutcome.SENT, DeliveryOutcome.QUEUED)]
    if failed:
        log.error("note %r not accepted for %s", subject, ", ".join(failed))
    log.info("mailed the editors: %s", subject)
    return not failed


def note_batch(app: App, subject: str, lines: list[str], editors: list[str]) -> Batch:
    """A provider batch carrying one note to each editor."""
    # "%%" starts a personal-value marker for the providers; a note has none.
    lines = [line.replace("%%", "%\u200b%") for line in lines]
    text = "\n\n".join([*lines, SIGNATURE]) + "\n"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    page = (f'<!DOCTYPE html><html lang="nl"><head><meta charset="utf-8">'
            f"<title>{html.escape(subject)}</title></head><body>{body}"
            f'<p style="color:#666">{html.escape(SIGNATURE)}</p></body></html>')
    note_id = uuid.uuid4().hex
    # A distinct outbox_id per note keeps the file provider from overwriting earlier notes;
    # notes belong to no issue (issue 0), so they never count as an issue's messages.
    base = uuid.UUID(note_id).int % 10**8
    recipients = tuple(
        Recipient(outbox_id=base + i, subscriber_id=0, email=normalize_email(address), name="",
                  message_id=f"<weerbaarnl.note.{note_id}.{i}@{app.message_domain}>", values={})
        for i, address in enumerate(editors)
    )
    return Batch(issue_id=0, segment_key="note", subject=subject, html=page, text=text,
                 recipients=recipients, metadata={"kind": "editor-note"})
