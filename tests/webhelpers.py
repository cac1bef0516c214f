"""Helpers for subscriber web tests: forms, CSRF tokens, and mails from the file outbox."""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in a page's form."""
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def mails_in(outbox: Path) -> list[EmailMessage]:
    """Every subscriber mail (issue 0) written by the file provider, oldest first."""
    paths = sorted((outbox / "issue-0").glob("*.eml")) if (outbox / "issue-0").is_dir() else []
    return [email.message_from_bytes(p.read_bytes(), policy=default) for p in paths]


def text_of(message: EmailMessage) -> str:
    """The text/plain part of a message."""
    return message.get_body(preferencelist=("plain",)).get_content()


def link_in(message: EmailMessage, path: str) -> str:
    """The first link to a path (e.g. "bevestigen") in a mail's text part."""
    match = re.search(rf"https?://\S+/{path}/[\w.-]+", text_of(message))
    assert match, f"no /{path}/ link in the mail"
    return match.group(0)
