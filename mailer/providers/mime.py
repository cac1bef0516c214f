"""Building the complete MIME message of one recipient, for providers that send MIME."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from mailer.message import build_message
from mailer.models import Batch, Recipient


def mime_for(batch: Batch, recipient: Recipient, sender: str, reply_to: str,
             now: datetime) -> EmailMessage:
    """The message one recipient receives, personal values and headers filled in."""
    subject = ("[TEST] " if batch.test else "") + batch.subject
    return build_message(
        sender=sender, reply_to=reply_to, to_name=recipient.name, to_email=recipient.email,
        subject=subject, html=batch.html_template.fill(recipient.values),
        text=batch.text_template.fill(recipient.values), message_id=recipient.message_id,
        date=now, headers={**batch.headers, **recipient.headers},
    )
