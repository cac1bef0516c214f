"""Helpers for subscriber web tests: form guards (CSRF tokens, link form keys) and mails
from the file outbox."""

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


FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


def form_key_of(html: str) -> str:
    """The key in the form of a page reached through a link (confirm, preferences)."""
    match = FORM_KEY.search(html)
    assert match, "no form key in the page"
    return match.group(1)


def guard_of(html: str) -> dict[str, str]:
    """The hidden field a page's form is checked by: a link form's key, else the CSRF
    token of the session (the public subscribe form)."""
    if FORM_KEY.search(html):
        return {"form_key": form_key_of(html)}
    return {"csrf_token": csrf_of(html)}


def form_key_for(web, purpose: str, path: str) -> str:
    """The key the page of a link (a path ending in its token) puts in its form."""
    from mailer.web.security import form_key

    with web.app_context():
        return form_key(purpose, path.rsplit("/", 1)[1])
